#include "store/results_store.h"

#include <unistd.h>
#include <QDateTime>
#include <QSqlDatabase>
#include <QSqlError>
#include <QSqlQuery>
#include <QVariant>

#include <atomic>
#include <fstream>
#include <sstream>

#include "error.h"

#include <nlohmann/json.hpp>

namespace phatgoose {
namespace {

// Each step moves the schema up one version; never edit a released step, append a new one.
const std::vector<std::vector<const char*>>& migrationSteps() {
    static const std::vector<std::vector<const char*>> steps{
        {
            "CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, started_at TEXT "
            "NOT NULL, "
            "finished_at TEXT, status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed', "
            "'cancelled')), settings TEXT NOT NULL DEFAULT '{}', version TEXT NOT NULL DEFAULT '')",
            "CREATE TABLE metrics (run INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, method TEXT "
            "NOT "
            "NULL, top_k INTEGER NOT NULL, dataset TEXT NOT NULL, metric TEXT NOT NULL, value REAL NOT NULL, "
            "examples INTEGER NOT NULL, UNIQUE (run, method, top_k, dataset, metric))",
            "CREATE TABLE predictions (run INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, method "
            "TEXT NOT "
            "NULL, top_k INTEGER NOT NULL, dataset TEXT NOT NULL, example INTEGER NOT NULL, input TEXT NOT "
            "NULL, "
            "target TEXT NOT NULL, prediction TEXT NOT NULL, correct INTEGER NOT NULL, score REAL NOT NULL, "
            "UNIQUE (run, method, top_k, dataset, example))",
            "CREATE TABLE loss_curves (run INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, expert "
            "TEXT NOT "
            "NULL, kind TEXT NOT NULL, step INTEGER NOT NULL, loss REAL NOT NULL, UNIQUE (run, expert, kind, "
            "step))",
            "CREATE TABLE routing_traces (id INTEGER PRIMARY KEY AUTOINCREMENT, run INTEGER REFERENCES "
            "runs(id) ON "
            "DELETE CASCADE, name TEXT NOT NULL, created_at TEXT NOT NULL, json TEXT NOT NULL)",
            "CREATE INDEX routing_traces_by_run ON routing_traces(run)",
        },
        {
            // Who began a run, so that a run left running by a process that is gone reads as interrupted.
            "ALTER TABLE runs ADD COLUMN pid INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE runs ADD COLUMN host TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE runs ADD COLUMN process_start TEXT NOT NULL DEFAULT ''",
        },
        {
            // Routing statistics over datasets (`route-stats`): the raw sums per dataset x module, arrays
            // over the experts as JSON; the method, k and expert names are the run's settings.
            "CREATE TABLE routing_statistics (run INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, "
            "dataset TEXT NOT NULL, examples INTEGER NOT NULL, position INTEGER NOT NULL, site TEXT NOT "
            "NULL, "
            "decoder_tokens INTEGER NOT NULL, tokens INTEGER NOT NULL, weight_sum TEXT NOT NULL, kept TEXT "
            "NOT NULL, top1 TEXT NOT NULL, entropy_sum REAL NOT NULL, UNIQUE (run, dataset, site))",
            "CREATE INDEX routing_statistics_by_run ON routing_statistics(run)",
        },
    };
    return steps;
}

QString text(const std::string& s) {
    return QString::fromStdString(s);
}
std::string text(const QVariant& v) {
    return v.toString().toStdString();
}
std::string nowUtc() {
    return QDateTime::currentDateTimeUtc().toString(Qt::ISODateWithMs).toStdString();
}

// SQLite's own wording is terse; the common cases get a sentence a user can act on.
std::string explain(const QSqlError& error) {
    const std::string raw =
        (error.databaseText().isEmpty() ? error.text() : error.databaseText()).toStdString();
    if (raw.find("not a database") != std::string::npos)
        return "the file is not a SQLite database (" + raw + ")";
    if (raw.find("locked") != std::string::npos || raw.find("busy") != std::string::npos)
        return "the database is locked by another program (" + raw + ")";
    if (raw.find("readonly") != std::string::npos || raw.find("read-only") != std::string::npos)
        return "the database is read-only (" + raw + ")";
    if (raw.find("unable to open") != std::string::npos)
        return "cannot open or create the database file; does its folder exist and is it writable? (" + raw +
               ")";
    return raw;
}

// One connection's statements; every failure becomes a phatgoose::Error naming the file.
class Sql {
public:
    Sql(const std::string& connection, const std::filesystem::path& file)
        : db_(QSqlDatabase::database(text(connection), false)), file_(file) {}

    [[noreturn]] void fail(const std::string& what, const QSqlError& error) const {
        throw Error(file_.string() + ": " + what + ": " + explain(error));
    }

    QSqlQuery prepare(const char* sql) const {
        QSqlQuery query(db_);
        if (!query.prepare(QString::fromUtf8(sql))) fail("cannot prepare a statement", query.lastError());
        return query;
    }

    QSqlQuery exec(const char* sql, const std::vector<QVariant>& values = {}) const {
        QSqlQuery query = prepare(sql);
        for (size_t i = 0; i < values.size(); ++i) query.bindValue(int(i), values[i]);
        run(query);
        return query;
    }

    void run(QSqlQuery& query) const {
        if (!query.exec())
            fail("cannot run '" + query.lastQuery().left(60).toStdString() + "'", query.lastError());
    }

private:
    QSqlDatabase db_;
    std::filesystem::path file_;
};

// BEGIN IMMEDIATE takes the write lock up front, so a concurrent writer fails here, before any work is lost.
class Transaction {
public:
    explicit Transaction(const Sql& sql) : sql_(sql) { sql_.exec("BEGIN IMMEDIATE"); }
    ~Transaction() {
        if (!committed_) {
            QSqlQuery rollback = sql_.prepare("ROLLBACK");
            rollback.exec();  // best effort: the failure that brought us here is the one to report
        }
    }
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    void commit() {
        sql_.exec("COMMIT");
        committed_ = true;
    }

private:
    const Sql& sql_;
    bool committed_ = false;
};

QVariant integer(int64_t v) {
    return QVariant(qlonglong(v));
}

std::string thisHost() {
    char name[256] = {};
    if (gethostname(name, sizeof name - 1) != 0) return "";
    return name;
}

// When process `pid` started (field 22 of /proc/PID/stat, clock ticks since boot): with the pid, it names
// one process even after the pid is reused. "" when there is no such process.
std::string processStart(int64_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) return "";
    // The command name (field 2) is in parentheses and may hold spaces: count fields after its last ')'.
    const size_t close = line.rfind(')');
    if (close == std::string::npos) return "";
    std::istringstream fields(line.substr(close + 1));
    std::string field;
    for (int i = 3; i <= 22 && fields >> field; ++i)
        if (i == 22) return field;
    return "";
}

constexpr const char* kRunColumns =
    "id, kind, started_at, finished_at, status, settings, version, pid, host, "
    "process_start";

RunRecord runFrom(const QSqlQuery& q) {
    RunRecord r;
    r.id = q.value(0).toLongLong();
    r.kind = text(q.value(1));
    r.started_at = text(q.value(2));
    r.finished_at = q.value(3).isNull() ? "" : text(q.value(3));
    r.status = text(q.value(4));
    r.settings = text(q.value(5));
    r.version = text(q.value(6));
    r.pid = q.value(7).toLongLong();
    r.host = text(q.value(8));
    const std::string started = text(q.value(9));
    const bool gone = r.pid > 0 && r.host == thisHost() && processStart(r.pid) != started;
    if (r.status == runStatusName(RunStatus::Running) && gone)
        r.status = runStatusName(RunStatus::Interrupted);
    return r;
}

std::atomic<int> connection_counter{0};

}  // namespace

std::string runStatusName(RunStatus status) {
    switch (status) {
        case RunStatus::Running:
            return "running";
        case RunStatus::Finished:
            return "finished";
        case RunStatus::Failed:
            return "failed";
        case RunStatus::Cancelled:
            return "cancelled";
        case RunStatus::Interrupted:
            return "interrupted";
    }
    return "unknown";
}

ResultsStore::ResultsStore(const std::filesystem::path& file)
    : file_(file), connection_("phatgoose-results-" + std::to_string(++connection_counter)) {
    std::error_code ec;
    if (std::filesystem::is_directory(file, ec))
        throw Error(file.string() + ": is a folder, not a results database file");
    {
        QSqlDatabase db = QSqlDatabase::addDatabase("QSQLITE", text(connection_));
        if (!db.isValid()) {
            db = QSqlDatabase();
            QSqlDatabase::removeDatabase(text(connection_));
            throw Error(file.string() + ": Qt's SQLite driver (QSQLITE) is not available");
        }
        db.setDatabaseName(QString::fromStdString(file.string()));
        // Waits this long for another writer before reporting the database as locked.
        db.setConnectOptions("QSQLITE_BUSY_TIMEOUT=3000");
    }
    try {
        QSqlDatabase db = QSqlDatabase::database(text(connection_), false);
        if (!db.open()) Sql(connection_, file_).fail("cannot open the results database", db.lastError());
        configure();
        migrate();
    } catch (...) {
        QSqlDatabase::database(text(connection_), false).close();
        QSqlDatabase::removeDatabase(text(connection_));
        throw;
    }
}

ResultsStore::~ResultsStore() {
    QSqlDatabase::database(text(connection_), false).close();
    QSqlDatabase::removeDatabase(text(connection_));
}

int ResultsStore::schemaVersion() const {
    QSqlQuery q = Sql(connection_, file_).exec("PRAGMA user_version");
    return q.next() ? q.value(0).toInt() : 0;
}

void ResultsStore::configure() {
    // The version check reads the header first, so a file that is not SQLite fails here, before any write.
    const int version = schemaVersion();
    if (version > kSchemaVersion)
        throw Error(file_.string() + ": the results database has schema version " + std::to_string(version) +
                    ", newer than this program's version " + std::to_string(kSchemaVersion) +
                    "; open it with a newer phatgoose");
    const Sql sql(connection_, file_);
    // WAL: readers (the GUI) never block the writer, and a killed writer loses only its open transaction.
    sql.exec("PRAGMA journal_mode=WAL");
    sql.exec("PRAGMA synchronous=NORMAL");
    sql.exec("PRAGMA foreign_keys=ON");
}

void ResultsStore::migrate() {
    const auto& steps = migrationSteps();
    if (int(steps.size()) != kSchemaVersion)
        throw Error("results store: kSchemaVersion disagrees with the migrations");
    const Sql sql(connection_, file_);
    for (int version = schemaVersion(); version < kSchemaVersion; ++version) {
        Transaction transaction(sql);
        for (const char* statement : steps[size_t(version)]) sql.exec(statement);
        // user_version lives in the header and is written by this same transaction.
        const std::string bump = "PRAGMA user_version=" + std::to_string(version + 1);
        sql.exec(bump.c_str());
        transaction.commit();
    }
}

int64_t ResultsStore::beginRun(const std::string& kind, const std::string& settings_json,
                               const std::string& version) {
    const Sql sql(connection_, file_);
    Transaction transaction(sql);
    const int64_t pid = int64_t(getpid());
    QSqlQuery q = sql.exec(
        "INSERT INTO runs (kind, started_at, status, settings, version, pid, host, process_start) VALUES (?, "
        "?, "
        "?, ?, ?, ?, ?, ?)",
        {text(kind), text(nowUtc()), text(runStatusName(RunStatus::Running)),
         text(settings_json.empty() ? "{}" : settings_json), text(version), integer(pid), text(thisHost()),
         text(processStart(pid))});
    const int64_t id = q.lastInsertId().toLongLong();
    transaction.commit();
    return id;
}

void ResultsStore::finishRun(int64_t run, RunStatus status) {
    if (status == RunStatus::Running || status == RunStatus::Interrupted)
        throw Error(file_.string() + ": finishRun needs a final status, not " + runStatusName(status));
    const Sql sql(connection_, file_);
    Transaction transaction(sql);
    QSqlQuery q = sql.exec("UPDATE runs SET finished_at = ?, status = ? WHERE id = ?",
                           {text(nowUtc()), text(runStatusName(status)), integer(run)});
    if (q.numRowsAffected() != 1) throw Error(file_.string() + ": no run with id " + std::to_string(run));
    transaction.commit();
}

void ResultsStore::addCell(int64_t run, const MetricRecord& m,
                           const std::vector<PredictionRecord>& predictions) {
    const Sql sql(connection_, file_);
    Transaction transaction(sql);
    sql.exec(
        "INSERT INTO metrics (run, method, top_k, dataset, metric, value, examples) VALUES (?, ?, ?, ?, ?, "
        "?, ?)",
        {integer(run), text(m.method), integer(m.top_k), text(m.dataset), text(m.metric), m.value,
         integer(m.examples)});
    QSqlQuery insert = sql.prepare(
        "INSERT INTO predictions (run, method, top_k, dataset, example, input, target, prediction, correct, "
        "score) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    for (const PredictionRecord& p : predictions) {
        const std::vector<QVariant> values{
            integer(run),  text(p.method), integer(p.top_k),   text(p.dataset), integer(p.example_index),
            text(p.input), text(p.target), text(p.prediction), int(p.correct),  p.score};
        for (size_t i = 0; i < values.size(); ++i) insert.bindValue(int(i), values[i]);
        sql.run(insert);
    }
    transaction.commit();
}

void ResultsStore::addLossCurve(int64_t run, const std::vector<LossPoint>& points) {
    const Sql sql(connection_, file_);
    Transaction transaction(sql);
    QSqlQuery insert =
        sql.prepare("INSERT INTO loss_curves (run, expert, kind, step, loss) VALUES (?, ?, ?, ?, ?)");
    for (const LossPoint& p : points) {
        insert.bindValue(0, integer(run));
        insert.bindValue(1, text(p.expert));
        insert.bindValue(2, text(p.kind));
        insert.bindValue(3, integer(p.step));
        insert.bindValue(4, p.loss);
        sql.run(insert);
    }
    transaction.commit();
}

int64_t ResultsStore::saveTrace(std::optional<int64_t> run, const std::string& name,
                                const std::string& json) {
    const Sql sql(connection_, file_);
    Transaction transaction(sql);
    QSqlQuery q = sql.exec("INSERT INTO routing_traces (run, name, created_at, json) VALUES (?, ?, ?, ?)",
                           {run ? integer(*run) : QVariant(), text(name), text(nowUtc()), text(json)});
    const int64_t id = q.lastInsertId().toLongLong();
    transaction.commit();
    return id;
}

std::vector<RunRecord> ResultsStore::runs() const {
    const std::string select = std::string("SELECT ") + kRunColumns + " FROM runs ORDER BY id";
    QSqlQuery q = Sql(connection_, file_).exec(select.c_str());
    std::vector<RunRecord> out;
    while (q.next()) out.push_back(runFrom(q));
    return out;
}

std::optional<RunRecord> ResultsStore::run(int64_t id) const {
    const std::string select = std::string("SELECT ") + kRunColumns + " FROM runs WHERE id = ?";
    QSqlQuery q = Sql(connection_, file_).exec(select.c_str(), {integer(id)});
    if (!q.next()) return std::nullopt;
    return runFrom(q);
}

std::vector<MetricRecord> ResultsStore::metrics(int64_t run) const {
    QSqlQuery q = Sql(connection_, file_)
                      .exec(
                          "SELECT method, top_k, dataset, metric, value, examples FROM metrics WHERE run = ? "
                          "ORDER BY rowid",
                          {integer(run)});
    std::vector<MetricRecord> out;
    while (q.next())
        out.push_back({text(q.value(0)), q.value(1).toLongLong(), text(q.value(2)), text(q.value(3)),
                       q.value(4).toDouble(), q.value(5).toLongLong()});
    return out;
}

std::vector<PredictionRecord> ResultsStore::predictions(int64_t run) const {
    QSqlQuery q = Sql(connection_, file_)
                      .exec(
                          "SELECT method, top_k, dataset, example, input, target, prediction, correct, score "
                          "FROM predictions "
                          "WHERE run = ? ORDER BY rowid",
                          {integer(run)});
    std::vector<PredictionRecord> out;
    while (q.next())
        out.push_back({text(q.value(0)), q.value(1).toLongLong(), text(q.value(2)), q.value(3).toLongLong(),
                       text(q.value(4)), text(q.value(5)), text(q.value(6)), q.value(7).toInt() != 0,
                       q.value(8).toDouble()});
    return out;
}

std::vector<LossPoint> ResultsStore::lossCurve(int64_t run) const {
    QSqlQuery q =
        Sql(connection_, file_)
            .exec(
                "SELECT expert, kind, step, loss FROM loss_curves WHERE run = ? ORDER BY expert, kind, step",
                {integer(run)});
    std::vector<LossPoint> out;
    while (q.next())
        out.push_back({text(q.value(0)), text(q.value(1)), q.value(2).toLongLong(), q.value(3).toDouble()});
    return out;
}

std::vector<TraceRecord> ResultsStore::traces(std::optional<int64_t> run) const {
    const char* all = "SELECT id, run, name, created_at, json FROM routing_traces ORDER BY id";
    const char* of_run =
        "SELECT id, run, name, created_at, json FROM routing_traces WHERE run = ? ORDER BY id";
    QSqlQuery q =
        run ? Sql(connection_, file_).exec(of_run, {integer(*run)}) : Sql(connection_, file_).exec(all);
    std::vector<TraceRecord> out;
    while (q.next()) {
        TraceRecord t;
        t.id = q.value(0).toLongLong();
        if (!q.value(1).isNull()) t.run = q.value(1).toLongLong();
        t.name = text(q.value(2));
        t.created_at = text(q.value(3));
        t.json = text(q.value(4));
        out.push_back(std::move(t));
    }
    return out;
}

int64_t ResultsStore::saveRoutingAnalysis(const RoutingStatistics& statistics, bool cancelled,
                                          const std::string& settings_json, const std::string& version) {
    // What the statistics say of themselves joins the caller's settings: the views read it back from there.
    nlohmann::json settings = nlohmann::json::parse(settings_json.empty() ? "{}" : settings_json);
    settings["method"] = statistics.method;
    settings["top_k"] = statistics.top_k;
    settings["expert_names"] = statistics.expert_names;
    const int64_t run = beginRun("route-stats", settings.dump(), version);
    try {
        for (const DatasetRoutingStatistics& d : statistics.datasets) addRoutingStatistics(run, d);
    } catch (...) {
        finishRun(run, RunStatus::Failed);
        throw;
    }
    finishRun(run, cancelled ? RunStatus::Cancelled : RunStatus::Finished);
    return run;
}

void ResultsStore::addRoutingStatistics(int64_t run, const DatasetRoutingStatistics& dataset) {
    const Sql sql(connection_, file_);
    Transaction transaction(sql);
    QSqlQuery insert = sql.prepare(
        "INSERT INTO routing_statistics (run, dataset, examples, position, site, decoder_tokens, tokens, "
        "weight_sum, kept, top1, entropy_sum) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    for (size_t i = 0; i < dataset.sites.size(); ++i) {
        const SiteStatistics& s = dataset.sites[i];
        const std::vector<QVariant> values{integer(run),
                                           text(dataset.name),
                                           integer(dataset.examples),
                                           integer(int64_t(i)),
                                           text(s.site),
                                           int(s.decoder_tokens),
                                           integer(s.tokens),
                                           text(nlohmann::json(s.weight_sum).dump()),
                                           text(nlohmann::json(s.kept).dump()),
                                           text(nlohmann::json(s.top1).dump()),
                                           s.entropy_sum};
        for (size_t v = 0; v < values.size(); ++v) insert.bindValue(int(v), values[v]);
        sql.run(insert);
    }
    transaction.commit();
}

std::vector<DatasetRoutingStatistics> ResultsStore::routingStatistics(int64_t run) const {
    QSqlQuery q = Sql(connection_, file_)
                      .exec(
                          "SELECT dataset, examples, site, decoder_tokens, tokens, weight_sum, kept, top1, "
                          "entropy_sum FROM "
                          "routing_statistics WHERE run = ? ORDER BY rowid",
                          {integer(run)});
    std::vector<DatasetRoutingStatistics> out;
    while (q.next()) {
        const std::string dataset = text(q.value(0));
        if (out.empty() || out.back().name != dataset)
            out.push_back({.name = dataset, .examples = q.value(1).toLongLong(), .sites = {}});
        SiteStatistics s;
        s.site = text(q.value(2));
        s.decoder_tokens = q.value(3).toInt() != 0;
        s.tokens = q.value(4).toLongLong();
        try {
            s.weight_sum = nlohmann::json::parse(text(q.value(5))).get<std::vector<double>>();
            s.kept = nlohmann::json::parse(text(q.value(6))).get<std::vector<int64_t>>();
            s.top1 = nlohmann::json::parse(text(q.value(7))).get<std::vector<int64_t>>();
        } catch (const nlohmann::json::exception& e) {
            throw Error(file_.string() + ": routing statistics of run " + std::to_string(run) + ", " +
                        dataset + " at " + s.site + " are damaged: " + e.what());
        }
        s.entropy_sum = q.value(8).toDouble();
        out.back().sites.push_back(std::move(s));
    }
    return out;
}

void ResultsStore::addLossCurve(int64_t run, const std::string& who, const std::string& kind,
                                const std::vector<double>& curve) {
    if (curve.empty()) return;
    std::vector<LossPoint> points;
    for (size_t i = 0; i < curve.size(); ++i) points.push_back({who, kind, int64_t(i) + 1, curve[i]});
    addLossCurve(run, points);
}

int64_t recordTrainingRun(ResultsStore& store, const std::string& kind, const std::string& who,
                          const std::string& curve_kind, const std::string& settings_json,
                          const std::vector<double>& curve, const std::string& version) {
    const int64_t run = store.beginRun(kind, settings_json, version);
    store.addLossCurve(run, who, curve_kind, curve);
    store.finishRun(run, RunStatus::Finished);
    return run;
}

}  // namespace phatgoose

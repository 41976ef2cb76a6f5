// The T5 tokenizer against the reference cases (Hugging Face's own tokenization of a sentence), its
// sentinels and out-of-vocabulary ids, training, bad files, and the reason the shim exists: this executable
// links libtorch, and sentencepiece must still work in it (docs/ARCHITECTURE.md, "Machine facts").
// LibTorch before Qt, and Q_SLOTS (QT_NO_KEYWORDS): LibTorch uses `slots` and `emit` as identifiers.
#include <ATen/ATen.h>

#include <fcntl.h>
#include <unistd.h>

#include <QTemporaryDir>
#include <QtTest>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "error.h"
#include "fixtures/files.h"
#include "tokenizer/tokenizer.h"

namespace fs = std::filesystem;
using phatgoose::Tokenizer;

namespace {

const char* const kCases[] = {"t5v10_relu_tied", "t5v11_gatedgelu_untied"};

QString show(const std::vector<int64_t>& ids) {
    QStringList parts;
    for (const int64_t id : ids) parts << QString::number(id);
    return "[" + parts.join(", ") + "]";
}

QString q(const std::string& text) {
    return QString::fromStdString(text);
}

QStringList toQt(const std::vector<std::string>& strings) {
    QStringList out;
    for (const std::string& s : strings) out << QString::fromStdString(s);
    return out;
}

void writeFile(const fs::path& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary);
    out << bytes;
}

// The message of the phatgoose::Error that `body` throws, or "" when it throws none, so that the caller's
// check for the file name fails.
template <typename Body>
std::string errorMessage(Body&& body) {
    try {
        body();
    } catch (const phatgoose::Error& e) {
        return e.what();
    }
    return "";
}

// A corpus with enough distinct words for a few hundred pieces; fixed, so training is reproducible.
std::string generatedCorpus() {
    const char* const subjects[] = {"the cat",
                                    "a dog",
                                    "my neighbour",
                                    "every student",
                                    "our teacher",
                                    "the old farmer",
                                    "a small bird",
                                    "this machine",
                                    "several musicians",
                                    "the quick journalist",
                                    "a careful engineer",
                                    "the hungry children"};
    const char* const verbs[] = {"reads",   "watches",   "builds",  "carries",     "paints",     "remembers",
                                 "follows", "describes", "borrows", "photographs", "negotiates", "juggles"};
    const char* const objects[] = {
        "a heavy book",      "the red bicycle",        "seven yellow apples",       "the quiet river",
        "an unusual puzzle", "twelve wooden chairs",   "the morning newspaper",     "a mysterious envelope",
        "the frozen lake",   "fourteen glass bottles", "the complicated timetable", "a crowded marketplace"};
    const char* const endings[] = {"today.",
                                   "every evening.",
                                   "in winter!",
                                   "before lunch?",
                                   "again, slowly.",
                                   "without hesitation.",
                                   "during the thunderstorm.",
                                   "quite enthusiastically."};
    std::ostringstream out;
    uint32_t state = 12345;
    const auto pick = [&state](size_t n) {
        state = state * 1664525u + 1013904223u;
        return (state >> 16) % n;
    };
    for (int line = 0; line < 3000; ++line) {
        out << subjects[pick(std::size(subjects))] << ' ' << verbs[pick(std::size(verbs))] << ' '
            << objects[pick(std::size(objects))] << ' ' << endings[pick(std::size(endings))] << ' '
            << pick(1000) << '\n';
    }
    return out.str();
}

// Captures what the process writes to file descriptor 2 (sentencepiece logs there, bypassing Qt).
class StderrCapture {
public:
    explicit StderrCapture(const fs::path& file) : file_(file) {
        std::fflush(stderr);
        saved_ = dup(2);
        const int fd = open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fd, 2);
        close(fd);
    }
    ~StderrCapture() { restore(); }
    std::string finish() {
        restore();
        return phatgoose::testing::readFileBytes(file_);
    }

private:
    void restore() {
        if (saved_ < 0) return;
        std::cerr.flush();
        std::fflush(stderr);
        dup2(saved_, 2);
        close(saved_);
        saved_ = -1;
    }
    fs::path file_;
    int saved_ = -1;
};

bool processHasLoaded(const std::string& library) {
    return phatgoose::testing::readFileBytes("/proc/self/maps").find(library) != std::string::npos;
}

}  // namespace

class TokenizerTest : public QObject {
    Q_OBJECT

private:
    fs::path reference_;

    fs::path modelDir(const char* reference_case) const { return reference_ / reference_case / "model"; }
    fs::path spieceModel() const { return modelDir(kCases[0]) / "spiece.model"; }
    // T5's usual 100 sentinels on top of the reference vocabulary (256 pieces): ids 256..355.
    Tokenizer withSentinels() const { return Tokenizer::fromFile(spieceModel(), 100); }

private Q_SLOTS:
    void initTestCase() {
        const QByteArray dir = qgetenv("PHATGOOSE_REFERENCE_DIR");
        if (dir.isEmpty()) {
            QFAIL("PHATGOOSE_REFERENCE_DIR is not set; run through ctest or point it at shared/reference");
        }
        reference_ = dir.toStdString();
        for (const char* reference_case : kCases) {
            const fs::path json = reference_ / reference_case / "reference.json";
            QVERIFY2(fs::exists(json), qPrintable("missing reference case " + QString::fromStdString(json)));
        }
    }

    // First, while no tokenizer has loaded the shim yet: libtorch works, sentencepiece arrives only
    // through dlopen, and both keep working side by side.
    void coexistsWithTorch() {
        QCOMPARE(at::ones({2}).sum().item<float>(), 2.0f);
        QVERIFY2(!processHasLoaded("libsentencepiece"), "libsentencepiece is linked, not dlopen'ed");
        const Tokenizer tokenizer = Tokenizer::fromModelDir(modelDir(kCases[0]));
        QCOMPARE(q(tokenizer.decode(tokenizer.encode("free software"))), QString("free software"));
        QVERIFY(processHasLoaded("libsentencepiece"));
        const at::Tensor ids = at::tensor(at::ArrayRef<int64_t>(tokenizer.encode("free software")));
        QCOMPARE(ids.sum().item<int64_t>(), int64_t(179 + 130 + 1));
    }

    void shimPathIsReported() { QVERIFY(fs::is_regular_file(Tokenizer::shimPath())); }

    void matchesReference_data() {
        QTest::addColumn<QString>("referenceCase");
        for (const char* reference_case : kCases) QTest::newRow(reference_case) << QString(reference_case);
    }
    void matchesReference() {
        QFETCH(QString, referenceCase);
        const std::string name = referenceCase.toStdString();
        const nlohmann::json reference =
            nlohmann::json::parse(phatgoose::testing::readFileBytes(reference_ / name / "reference.json"));
        const Tokenizer tokenizer = Tokenizer::fromModelDir(modelDir(name.c_str()));
        const auto text = reference.at("text").get<std::string>();
        QCOMPARE(tokenizer.size(), int64_t(256));  // tokenizer_config.json says extra_ids 0
        QCOMPARE(toQt(tokenizer.encodeAsPieces(text)),
                 toQt(reference.at("text_pieces").get<std::vector<std::string>>()));
        QCOMPARE(show(tokenizer.encode(text)), show(reference.at("input_ids").get<std::vector<int64_t>>()));
        QCOMPARE(q(tokenizer.decode(tokenizer.encode(text))), q(text));
    }

    void roundTrips_data() {
        QTest::addColumn<QString>("text");
        QTest::newRow("words") << "free software";
        QTest::newRow("punctuation") << "You may convey copies (see section 4); \"as is\", without warranty.";
        QTest::newRow("digits") << "GNU General Public License, version 3 or 2.0 from 2007";
        QTest::newRow("mixed case") << "THE PROGRAM is PROVIDED by the copyright holder";
    }
    void roundTrips() {
        QFETCH(QString, text);
        const Tokenizer tokenizer = Tokenizer::fromModelDir(modelDir(kCases[0]));
        const std::vector<int64_t> ids = tokenizer.encode(text.toStdString());
        QCOMPARE(ids.back(), Tokenizer::kEos);
        QVERIFY2(std::find(ids.begin(), ids.end(), Tokenizer::kUnk) == ids.end(), qPrintable(show(ids)));
        QCOMPARE(QString::fromStdString(tokenizer.decode(ids)), text);
        QCOMPARE(show(tokenizer.encode(text.toStdString(), false)),
                 show(std::vector<int64_t>(ids.begin(), ids.end() - 1)));
    }

    void emptyTextIsJustEos() {
        const Tokenizer tokenizer = withSentinels();
        QCOMPARE(show(tokenizer.encode("")), show({Tokenizer::kEos}));
        QCOMPARE(show(tokenizer.encode("", false)), show({}));
        QCOMPARE(show(tokenizer.encode("   ")), show({Tokenizer::kEos}));
        QVERIFY(tokenizer.encodeAsPieces("").empty());
        QCOMPARE(q(tokenizer.decode({})), QString());
    }

    void specialIds() {
        const Tokenizer tokenizer = Tokenizer::fromModelDir(modelDir(kCases[0]));
        QCOMPARE(q(tokenizer.idToPiece(Tokenizer::kPad)), QString("<pad>"));
        QCOMPARE(q(tokenizer.idToPiece(Tokenizer::kEos)), QString("</s>"));
        QCOMPARE(q(tokenizer.idToPiece(Tokenizer::kUnk)), QString("<unk>"));
        std::vector<int64_t> ids = tokenizer.encode("free software");
        ids.insert(ids.begin(), Tokenizer::kPad);
        ids.push_back(Tokenizer::kPad);
        QCOMPARE(q(tokenizer.decode(ids)), QString("free software"));
        QCOMPARE(q(tokenizer.decode(ids, false)), QString("<pad> free software </s> <pad>"));
    }

    // The v1.1 reference model has 264 embedding rows for 256 pieces, and greedy decoding emits id 256.
    void paddingRowsBeyondTheVocabulary() {
        const Tokenizer tokenizer = Tokenizer::fromModelDir(modelDir(kCases[1]));
        QCOMPARE(tokenizer.size(), int64_t(256));
        QCOMPARE(q(tokenizer.idToPiece(256)), QString("<id_256>"));
        QCOMPARE(q(tokenizer.idToPiece(263)), QString("<id_263>"));
        const std::vector<int64_t> ids = {256, 179, 263, 130, 1};
        QCOMPARE(q(tokenizer.decode(ids)), QString("free software"));
        QCOMPARE(q(tokenizer.decode(ids, false)), QString("<id_256> free <id_263> software </s>"));
        QCOMPARE(q(tokenizer.decode({256})), QString());
    }

    // Sentinels are Hugging Face added tokens with lstrip/rstrip: surrounding spaces vanish and the text on
    // each side is tokenized on its own (so it gets its "▁"). Decoding puts one space on each side.
    void sentinels_data() {
        QTest::addColumn<QString>("text");
        QTest::addColumn<QStringList>("pieces");
        QTest::addColumn<QString>("decoded");
        QTest::newRow("spaced") << "free <extra_id_0> software"
                                << QStringList{"▁free", "<extra_id_0>", "▁software"}
                                << "free <extra_id_0> software";
        QTest::newRow("unspaced") << "free<extra_id_0>software"
                                  << QStringList{"▁free", "<extra_id_0>", "▁software"}
                                  << "free <extra_id_0> software";
        QTest::newRow("wide spaces") << "free \t <extra_id_1>\n software"
                                     << QStringList{"▁free", "<extra_id_1>", "▁software"}
                                     << "free <extra_id_1> software";
        QTest::newRow("first and last") << "<extra_id_0> is free <extra_id_99>"
                                        << QStringList{"<extra_id_0>", "▁is", "▁free", "<extra_id_99>"}
                                        << "<extra_id_0> is free <extra_id_99>";
        QTest::newRow("adjacent") << "<extra_id_0><extra_id_1> it"
                                  << QStringList{"<extra_id_0>", "<extra_id_1>", "▁it"}
                                  << "<extra_id_0> <extra_id_1> it";
        QTest::newRow("inside a word")
            << "re<extra_id_2>distribute" << QStringList{"▁re", "<extra_id_2>", "▁", "distribute"}
            << "re <extra_id_2> distribute";
    }
    void sentinels() {
        QFETCH(QString, text);
        QFETCH(QStringList, pieces);
        QFETCH(QString, decoded);
        const Tokenizer tokenizer = withSentinels();
        QCOMPARE(toQt(tokenizer.encodeAsPieces(text.toStdString())), pieces);
        std::vector<int64_t> expected_ids;
        for (const QString& piece : pieces) expected_ids.push_back(tokenizer.pieceToId(piece.toStdString()));
        expected_ids.push_back(Tokenizer::kEos);
        const std::vector<int64_t> ids = tokenizer.encode(text.toStdString());
        QCOMPARE(show(ids), show(expected_ids));
        QCOMPARE(QString::fromStdString(tokenizer.decode(ids)), decoded);
        QCOMPARE(show(tokenizer.encode(decoded.toStdString())), show(ids));
        QCOMPARE(QString::fromStdString(tokenizer.decode(ids, false)), decoded + " </s>");
    }

    void sentinelIds() {
        const Tokenizer tokenizer = withSentinels();
        QCOMPARE(tokenizer.pieceCount(), int64_t(256));
        QCOMPARE(tokenizer.size(), int64_t(356));
        QCOMPARE(tokenizer.sentinelId(0), int64_t(355));
        QCOMPARE(tokenizer.sentinelId(99), int64_t(256));
        QCOMPARE(q(tokenizer.idToPiece(355)), QString("<extra_id_0>"));
        QCOMPARE(q(tokenizer.idToPiece(256)), QString("<extra_id_99>"));
        QCOMPARE(q(tokenizer.idToPiece(356)), QString("<id_356>"));
        QCOMPARE(tokenizer.pieceToId("<extra_id_0>"), int64_t(355));
        QCOMPARE(tokenizer.pieceToId("<extra_id_100>"), Tokenizer::kUnk);
        QVERIFY(errorMessage([&] { tokenizer.sentinelId(100); }).find("<extra_id_100>") != std::string::npos);
        QVERIFY(!errorMessage([&] { tokenizer.sentinelId(-1); }).empty());
    }

    void notSentinels_data() {
        QTest::addColumn<QString>("text");
        QTest::addColumn<int>("extraIds");
        QTest::newRow("beyond extra_ids") << "a <extra_id_100> b" << 100;
        QTest::newRow("leading zero") << "a <extra_id_01> b" << 100;
        QTest::newRow("no number") << "a <extra_id_> b" << 100;
        QTest::newRow("unclosed") << "a <extra_id_5 b" << 100;
        QTest::newRow("no sentinels at all") << "a <extra_id_0> b" << 0;
    }
    void notSentinels() {
        QFETCH(QString, text);
        QFETCH(int, extraIds);
        const Tokenizer tokenizer = Tokenizer::fromFile(spieceModel(), extraIds);
        for (const int64_t id : tokenizer.encode(text.toStdString())) QVERIFY(id < tokenizer.pieceCount());
        QVERIFY(tokenizer.encodeAsPieces(text.toStdString()).size() > 3);
    }

    void pieceAndIdAgree() {
        const Tokenizer tokenizer = withSentinels();
        for (int64_t id = 0; id < tokenizer.size(); ++id) {
            QCOMPARE(tokenizer.pieceToId(tokenizer.idToPiece(id)), id);
        }
        QCOMPARE(tokenizer.pieceToId("no such piece"), Tokenizer::kUnk);
        QCOMPARE(tokenizer.pieceToId("▁free"), int64_t(179));
    }

    void extraIdsFromConfig_data() {
        QTest::addColumn<QString>("config");
        QTest::addColumn<qint64>("size");
        QTest::newRow("no config: Hugging Face's default 100") << "none" << qint64(356);
        QTest::newRow("no extra_ids key") << R"({"tokenizer_class": "T5Tokenizer"})" << qint64(356);
        QTest::newRow("extra_ids 8") << R"({"extra_ids": 8})" << qint64(264);
        QTest::newRow("extra_ids 0") << R"({"extra_ids": 0})" << qint64(256);
    }
    void extraIdsFromConfig() {
        QFETCH(QString, config);
        QFETCH(qint64, size);
        QTemporaryDir dir;
        const fs::path root = dir.path().toStdString();
        fs::copy_file(spieceModel(), root / "spiece.model");
        if (config != "none") writeFile(root / "tokenizer_config.json", config.toStdString());
        QCOMPARE(Tokenizer::fromModelDir(root).size(), size);
    }

    void trainsT5Model_data() {
        QTest::addColumn<QString>("modelType");
        QTest::addColumn<int>("vocabSize");
        QTest::newRow("unigram 200") << "unigram" << 200;
        QTest::newRow("bpe 300") << "bpe" << 300;
    }
    void trainsT5Model() {
        QFETCH(QString, modelType);
        QFETCH(int, vocabSize);
        QTemporaryDir dir;
        const fs::path root = dir.path().toStdString();
        writeFile(root / "corpus.txt", generatedCorpus());
        phatgoose::TokenizerTrainOptions options;
        options.input_text = root / "corpus.txt";
        options.model_prefix = root / "trained";
        options.vocab_size = vocabSize;
        options.model_type = modelType.toStdString();
        StderrCapture capture(root / "stderr.txt");
        try {
            Tokenizer::train(options);
        } catch (const phatgoose::Error& e) {
            QFAIL(e.what());
        }
        const std::string logged = capture.finish();
        QVERIFY2(logged.empty(), logged.substr(0, 500).c_str());

        const Tokenizer tokenizer = Tokenizer::fromFile(root / "trained.model", 0);
        QCOMPARE(tokenizer.pieceCount(), int64_t(vocabSize));
        QCOMPARE(q(tokenizer.idToPiece(0)), QString("<pad>"));
        QCOMPARE(q(tokenizer.idToPiece(1)), QString("</s>"));
        QCOMPARE(q(tokenizer.idToPiece(2)), QString("<unk>"));
        QCOMPARE(tokenizer.pieceToId("<s>"), Tokenizer::kUnk);  // no bos
        const std::string line = "the old farmer paints seven yellow apples again, slowly. 42";
        const std::vector<int64_t> ids = tokenizer.encode(line);
        QCOMPARE(ids.back(), Tokenizer::kEos);
        QVERIFY(std::find(ids.begin(), ids.end(), Tokenizer::kUnk) == ids.end());
        QCOMPARE(tokenizer.decode(ids), line);
    }

    void trainingErrorsNameTheInput() {
        QTemporaryDir dir;
        const fs::path root = dir.path().toStdString();
        phatgoose::TokenizerTrainOptions options;
        options.input_text = root / "missing.txt";
        options.model_prefix = root / "m";
        std::string message = errorMessage([&] { Tokenizer::train(options); });
        QVERIFY2(message.find("missing.txt") != std::string::npos, message.c_str());

        options.input_text = root / "tiny.txt";
        writeFile(options.input_text, "a b c\n");
        options.vocab_size = 5000;
        message = errorMessage([&] { Tokenizer::train(options); });
        QVERIFY2(message.find("tiny.txt") != std::string::npos, message.c_str());
    }

    void badFiles_data() {
        QTest::addColumn<QString>("spiece");  // "none", "copy" (a good one), "random", or the contents
        QTest::addColumn<QString>("config");  // "none" or the contents
        QTest::addColumn<QString>("file");
        QTest::addColumn<QString>("problem");
        const QString model = "copy";
        const QString none = "none";
        QTest::newRow("missing spiece.model") << none << none << "spiece.model"
                                              << "file not found";
        QTest::newRow("random bytes") << "random" << none << "spiece.model"
                                      << "not a sentencepiece model";
        QTest::newRow("empty spiece.model") << "" << none << "spiece.model"
                                            << "not a sentencepiece model";
        QTest::newRow("malformed config") << model << R"({"extra_ids": )"
                                          << "tokenizer_config.json"
                                          << "malformed JSON";
        QTest::newRow("config not an object") << model << "[1, 2]"
                                              << "tokenizer_config.json"
                                              << "JSON object";
        QTest::newRow("extra_ids not a number") << model << R"({"extra_ids": "100"})"
                                                << "tokenizer_config.json"
                                                << "extra_ids";
        QTest::newRow("negative extra_ids") << model << R"({"extra_ids": -3})"
                                            << "tokenizer_config.json"
                                            << "extra_ids";
    }
    void badFiles() {
        QFETCH(QString, spiece);
        QFETCH(QString, config);
        QFETCH(QString, file);
        QFETCH(QString, problem);
        QTemporaryDir dir;
        const fs::path root = dir.path().toStdString();
        if (spiece == "copy") {
            fs::copy_file(spieceModel(), root / "spiece.model");
        } else if (spiece == "random") {
            std::string bytes;
            uint32_t state = 7;
            for (int i = 0; i < 4096; ++i)
                bytes += static_cast<char>((state = state * 1103515245u + 12345u) >> 24);
            writeFile(root / "spiece.model", bytes);
        } else if (spiece != "none") {
            writeFile(root / "spiece.model", spiece.toStdString());
        }
        if (config != "none") writeFile(root / "tokenizer_config.json", config.toStdString());
        const std::string message = errorMessage([&] { Tokenizer::fromModelDir(root); });
        QVERIFY2(message.find((root / file.toStdString()).string()) != std::string::npos, message.c_str());
        QVERIFY2(message.find(problem.toStdString()) != std::string::npos, message.c_str());
    }

    void negativeExtraIds() {
        const std::string message = errorMessage([&] { Tokenizer::fromFile(spieceModel(), -1); });
        QVERIFY2(message.find("spiece.model") != std::string::npos, message.c_str());
    }

    void movedTokenizerStillWorks() {
        Tokenizer first = withSentinels();
        Tokenizer second = std::move(first);
        QCOMPARE(second.size(), int64_t(356));
        first = Tokenizer::fromModelDir(modelDir(kCases[1]));
        QCOMPARE(first.size(), int64_t(256));
    }
};

QTEST_GUILESS_MAIN(TokenizerTest)
#include "test_tokenizer.moc"

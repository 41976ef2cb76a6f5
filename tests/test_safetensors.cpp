// The safetensors reader and writer and the atomic file writes they rely on. Bad files are crafted byte
// by byte: every one must end in a phatgoose::Error naming the file and the problem, never in a crash.
#include <signal.h>
#include <sys/resource.h>

#include <QByteArray>
#include <QDir>
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "atomic_file.h"
#include "error.h"
#include "model/safetensors.h"

using phatgoose::DType;
using phatgoose::SafetensorsFile;
using phatgoose::TensorInfo;
using phatgoose::TensorToWrite;

namespace {

QByteArray littleEndian64(quint64 value) {
    QByteArray bytes;
    for (int i = 0; i < 8; ++i) bytes.append(static_cast<char>((value >> (8 * i)) & 0xff));
    return bytes;
}

// A file whose length field says `declared_length` (the real header length unless overridden).
QByteArray safetensorsBytes(const QByteArray& header, const QByteArray& data, qint64 declared_length = -1) {
    const quint64 length = declared_length < 0 ? header.size() : static_cast<quint64>(declared_length);
    return littleEndian64(length) + header + data;
}

void writeBytes(const std::filesystem::path& path, const QByteArray& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.constData(), bytes.size());
    QVERIFY2(out.good(), path.c_str());
}

std::string readBytes(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream content;
    content << in.rdbuf();
    return content.str();
}

QStringList folderEntries(const QTemporaryDir& dir) {
    return QDir(dir.path()).entryList(QDir::AllEntries | QDir::Hidden | QDir::System | QDir::NoDotAndDotDot);
}

std::filesystem::path pathIn(const QTemporaryDir& dir, const char* name) {
    return std::filesystem::path(dir.path().toStdString()) / name;
}

// Patterned bytes so that a tensor read from the wrong offset cannot compare equal.
std::vector<char> patternBytes(size_t size, int seed) {
    std::vector<char> bytes(size);
    for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>((i * 31 + seed * 7 + 1) & 0xff);
    return bytes;
}

// Caps the size of files this process may write, simulating a disk that fills up mid-write.
class FileSizeLimit {
public:
    explicit FileSizeLimit(rlim_t bytes) {
        getrlimit(RLIMIT_FSIZE, &saved_);
        old_handler_ = signal(SIGXFSZ, SIG_IGN);  // so write() fails with EFBIG instead of killing us
        rlimit limit = saved_;
        limit.rlim_cur = bytes;
        setrlimit(RLIMIT_FSIZE, &limit);
    }
    ~FileSizeLimit() {
        setrlimit(RLIMIT_FSIZE, &saved_);
        signal(SIGXFSZ, old_handler_);
    }

private:
    rlimit saved_{};
    sighandler_t old_handler_;
};

}  // namespace

class TestSafetensors : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void roundTripKeepsEveryByte();
    void headerIsPaddedAndLaidOutInOrder();
    void mappedBytesAreTheFilesOrNothing();
    void referenceModelParses();
    void badFilesAreClearErrors_data();
    void badFilesAreClearErrors();
    void writerRejectsBadTensors();
    void atomicWriteReplacesTheTarget();
    void failedWriteLeavesTheTargetIntact();
    void failedSafetensorsWriteLeavesTheTargetIntact();
    void writeIntoMissingFolderFails();
    void throwingWriterLeavesNothingBehind();
};

void TestSafetensors::roundTripKeepsEveryByte() {
    struct Case {
        const char* name;
        DType dtype;
        std::vector<int64_t> shape;
    };
    const std::vector<Case> cases = {
        {"f32.matrix", DType::F32, {2, 3}},
        {"f64", DType::F64, {2}},
        {"f16", DType::F16, {4}},
        {"bf16", DType::BF16, {1, 2}},
        {"i64", DType::I64, {3}},
        {"i32", DType::I32, {2, 2}},
        {"scalar.i16", DType::I16, {}},
        {"i8", DType::I8, {5}},
        {"empty.u8", DType::U8, {0}},
        {"bool", DType::Bool, {3}},
        {"empty.3d", DType::F32, {3, 0, 2}},
    };
    std::vector<std::vector<char>> data;
    std::vector<TensorToWrite> tensors;
    for (size_t i = 0; i < cases.size(); ++i) {
        int64_t numel = 1;
        for (int64_t dim : cases[i].shape) numel *= dim;
        data.push_back(patternBytes(numel * phatgoose::dtypeSize(cases[i].dtype), static_cast<int>(i)));
        tensors.push_back({cases[i].name, cases[i].dtype, cases[i].shape, data.back().data()});
    }
    const std::map<std::string, std::string> metadata = {{"format", "pt"}, {"note", "a \"quoted\" value"}};

    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const auto path = pathIn(dir, "round.safetensors");
    phatgoose::writeSafetensors(path, tensors, metadata);

    const SafetensorsFile file(path);
    QCOMPARE(file.header().tensors.size(), cases.size());
    QVERIFY(file.header().metadata == metadata);
    for (size_t i = 0; i < cases.size(); ++i) {
        const TensorInfo* info = file.header().find(cases[i].name);
        QVERIFY2(info, cases[i].name);
        QCOMPARE(info->dtype, cases[i].dtype);
        QVERIFY(info->shape == cases[i].shape);
        QCOMPARE(info->end - info->begin, static_cast<uint64_t>(data[i].size()));
        std::vector<char> back(data[i].size());
        file.read(*info, back.data());
        QVERIFY2(back == data[i], cases[i].name);
    }
    QCOMPARE(file.header().find("scalar.i16")->numel(), int64_t{1});
    QCOMPARE(file.header().find("empty.3d")->numel(), int64_t{0});
    QVERIFY(file.header().find("absent") == nullptr);
}

void TestSafetensors::headerIsPaddedAndLaidOutInOrder() {
    const std::vector<char> a = patternBytes(12, 1), b = patternBytes(3, 2);
    QTemporaryDir dir;
    const auto path = pathIn(dir, "order.safetensors");
    // "z" first: the data follows the given order, not the JSON key order.
    phatgoose::writeSafetensors(path, {{"z", DType::F32, {3}, a.data()}, {"a", DType::U8, {3}, b.data()}});

    const SafetensorsFile file(path);
    QCOMPARE(file.header().data_offset % 8, uint64_t{0});
    QCOMPARE(file.header().find("z")->begin, uint64_t{0});
    QCOMPARE(file.header().find("a")->begin, uint64_t{12});
    QCOMPARE(std::filesystem::file_size(path), file.header().data_offset + 15);
    const std::string bytes = readBytes(path);
    const std::string header = bytes.substr(8, file.header().data_offset - 8);
    QVERIFY(header.find("__metadata__") == std::string::npos);  // no metadata given, none written
}

// mapped(): the file's own bytes in place, a private copy on write (the file never changes), and nothing for
// bytes not aligned for their dtype (a U8 [3] first puts the F32 after it at an odd offset): the loader
// then reads them instead.
void TestSafetensors::mappedBytesAreTheFilesOrNothing() {
    const std::vector<char> a = patternBytes(8, 1), b = patternBytes(3, 2), c = patternBytes(4, 3);
    QTemporaryDir dir;
    const auto path = pathIn(dir, "mapped.safetensors");
    phatgoose::writeSafetensors(path, {{"a", DType::F32, {2}, a.data()},
                                       {"b", DType::U8, {3}, b.data()},
                                       {"c", DType::F32, {1}, c.data()}});
    const std::string before = readBytes(path);
    {
        const SafetensorsFile file(path);
        char* first = static_cast<char*>(file.mapped(*file.header().find("a")));
        QVERIFY(first);
        QCOMPARE(std::vector<char>(first, first + 8), a);
        QVERIFY(file.mapped(*file.header().find("c")) == nullptr);  // offset 11: not a multiple of 4
        std::vector<char> read(4);
        file.read(*file.header().find("c"), read.data());
        QCOMPARE(read, c);
        first[0] = 42;  // this process's page only
        file.releasePages();
    }
    QCOMPARE(readBytes(path), before);
}

void TestSafetensors::referenceModelParses() {
    const QByteArray reference_dir = qgetenv("PHATGOOSE_REFERENCE_DIR");
    QVERIFY2(!reference_dir.isEmpty(),
             "PHATGOOSE_REFERENCE_DIR is not set (ctest sets it; run through ctest)");
    const std::filesystem::path path =
        std::filesystem::path(reference_dir.toStdString()) / "t5v10_relu_tied/model/model.safetensors";
    QVERIFY2(std::filesystem::is_regular_file(path), ("missing reference file " + path.string()).c_str());

    const SafetensorsFile file(path);
    const TensorInfo* shared = file.header().find("shared.weight");
    QVERIFY(shared);
    QCOMPARE(shared->dtype, DType::F32);
    QVERIFY(shared->shape == std::vector<int64_t>({256, 64}));
    QVERIFY(file.header().find("encoder.final_layer_norm.weight"));
    std::vector<float> values(shared->numel());
    file.read(*shared, values.data());
    bool any_nonzero = false;
    for (float value : values) {
        QVERIFY(std::isfinite(value));
        any_nonzero = any_nonzero || value != 0.0f;
    }
    QVERIFY(any_nonzero);
}

void TestSafetensors::badFilesAreClearErrors_data() {
    QTest::addColumn<QByteArray>("bytes");
    QTest::addColumn<QString>("problem");

    const QByteArray f32x2 = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
    const QByteArray eight(8, '\x01');

    QTest::newRow("empty file") << QByteArray() << "too short for the 8-byte header length";
    QTest::newRow("7-byte file") << QByteArray(7, '\0') << "too short for the 8-byte header length";
    QTest::newRow("header length beyond the file")
        << safetensorsBytes("{}", {}, 1000) << "header length 1000 exceeds the file size 10";
    QTest::newRow("header length above the cap")
        << safetensorsBytes("{}", {}, qint64{1} << 40) << "exceeds the limit of 100000000 bytes";
    QTest::newRow("header JSON does not parse")
        << safetensorsBytes(R"({"a": )", {}) << "header is not valid JSON";
    QTest::newRow("header with a NUL byte")
        << safetensorsBytes(QByteArray("{}\0", 3), {}) << "header is not valid JSON";
    QTest::newRow("header not an object") << safetensorsBytes("[1, 2]", {}) << "header is not a JSON object";
    QTest::newRow("header nested too deep")
        << safetensorsBytes(R"({"a":{"shape":[[[1]]]}})", {}) << "nests deeper";
    QTest::newRow("duplicate tensor")
        << safetensorsBytes(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                            R"("a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                            "xy")
        << "repeats the key 'a'";
    QTest::newRow("entry not an object")
        << safetensorsBytes(R"({"a": 5})", {}) << "tensor 'a': the entry is not";
    QTest::newRow("missing dtype") << safetensorsBytes(R"({"a":{"shape":[],"data_offsets":[0,0]}})", {})
                                   << "tensor 'a': missing 'dtype'";
    QTest::newRow("missing shape") << safetensorsBytes(R"({"a":{"dtype":"U8","data_offsets":[0,0]}})", {})
                                   << "tensor 'a': missing 'shape'";
    QTest::newRow("missing data_offsets") << safetensorsBytes(R"({"a":{"dtype":"U8","shape":[0]}})", {})
                                          << "tensor 'a': missing 'data_offsets'";
    QTest::newRow("unexpected field")
        << safetensorsBytes(R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0],"x":1}})", {})
        << "unexpected field 'x'";
    QTest::newRow("offsets outside the data section")
        << safetensorsBytes(f32x2, "1234")
        << "tensor 'a': data_offsets [0, 8] end beyond the data section of 4";
    QTest::newRow("offsets backwards")
        << safetensorsBytes(R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[8,0]}})", eight)
        << "data_offsets [8, 0] run backwards";
    QTest::newRow("offsets negative")
        << safetensorsBytes(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[-1,0]}})", eight)
        << "'data_offsets' is not two non-negative integers";
    QTest::newRow("offsets not a pair")
        << safetensorsBytes(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}})", eight)
        << "'data_offsets' is not two non-negative integers";
    QTest::newRow("overlapping tensors")
        << safetensorsBytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                            R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                            QByteArray(12, '\0'))
        << "tensors 'a' [0, 8] and 'b' [4, 12] overlap";
    QTest::newRow("size differs from shape")
        << safetensorsBytes(R"({"enc.q.weight":{"dtype":"F32","shape":[4,8],"data_offsets":[0,100]}})",
                            QByteArray(100, '\0'))
        << "tensor 'enc.q.weight': data_offsets [0, 100] hold 100 bytes but shape [4, 8] of F32 needs 128";
    QTest::newRow("unknown dtype") << safetensorsBytes(
                                          R"({"a":{"dtype":"F8","shape":[1],"data_offsets":[0,1]}})", "x")
                                   << "tensor 'a': unknown dtype 'F8'";
    QTest::newRow("negative shape") << safetensorsBytes(
                                           R"({"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}})", {})
                                    << "shape entry -1 is not a non-negative integer";
    QTest::newRow("fractional shape")
        << safetensorsBytes(R"({"a":{"dtype":"U8","shape":[1.5],"data_offsets":[0,0]}})", {})
        << "shape entry 1.5 is not a non-negative integer";
    QTest::newRow("shape product overflows")
        << safetensorsBytes(R"({"a":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,0]}})",
                            {})
        << "shape [4294967296, 4294967296] of U8 overflows";
    QTest::newRow("byte size overflows")
        << safetensorsBytes(R"({"a":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,0]}})", {})
        << "of F64 overflows";
    QTest::newRow("metadata value not a string") << safetensorsBytes(R"({"__metadata__":{"format":1}})", {})
                                                 << "metadata value for 'format' is not a string";
    QTest::newRow("metadata not an object")
        << safetensorsBytes(R"({"__metadata__":"pt"})", {}) << "'__metadata__' is not a JSON object";
    QTest::newRow("truncated data") << safetensorsBytes(
                                           R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})",
                                           "12345678")
                                    << "end beyond the data section of 8 bytes (is the file truncated?)";
}

void TestSafetensors::badFilesAreClearErrors() {
    QFETCH(QByteArray, bytes);
    QFETCH(QString, problem);
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const auto path = pathIn(dir, "crafted.safetensors");
    writeBytes(path, bytes);
    try {
        SafetensorsFile file(path);
        QFAIL("the file was accepted");
    } catch (const phatgoose::Error& e) {
        const QString message = QString::fromUtf8(e.what());
        QVERIFY2(message.contains("crafted.safetensors"), qPrintable(message));
        QVERIFY2(message.contains(problem), qPrintable(message));
        QVERIFY2(!message.contains('\n'), qPrintable(message));
    }
}

void TestSafetensors::writerRejectsBadTensors() {
    QTemporaryDir dir;
    const auto path = pathIn(dir, "bad-input.safetensors");
    const char byte = 0;
    QVERIFY_THROWS_EXCEPTION(
        phatgoose::Error,
        phatgoose::writeSafetensors(path, {{"a", DType::U8, {1}, &byte}, {"a", DType::U8, {1}, &byte}}));
    QVERIFY_THROWS_EXCEPTION(phatgoose::Error,
                             phatgoose::writeSafetensors(path, {{"__metadata__", DType::U8, {1}, &byte}}));
    QVERIFY_THROWS_EXCEPTION(phatgoose::Error,
                             phatgoose::writeSafetensors(path, {{"a", DType::U8, {-1}, &byte}}));
    QVERIFY_THROWS_EXCEPTION(phatgoose::Error,
                             phatgoose::writeSafetensors(path, {{"a", DType::U8, {4}, nullptr}}));
    QVERIFY_THROWS_EXCEPTION(phatgoose::Error,
                             phatgoose::writeSafetensors(path, {{"\xff", DType::U8, {1}, &byte}}));
    QVERIFY(folderEntries(dir).isEmpty());
}

void TestSafetensors::atomicWriteReplacesTheTarget() {
    QTemporaryDir dir;
    const auto path = pathIn(dir, "target.txt");
    phatgoose::writeFileAtomically(path, "old");
    phatgoose::writeFileAtomically(path, [](std::ostream& out) { out << "new " << 42; });
    QCOMPARE(readBytes(path), std::string("new 42"));
    QCOMPARE(folderEntries(dir), QStringList{"target.txt"});
}

void TestSafetensors::failedWriteLeavesTheTargetIntact() {
    QTemporaryDir dir;
    const auto path = pathIn(dir, "target.txt");
    phatgoose::writeFileAtomically(path, "old content");
    const std::string big(1 << 20, 'x');
    try {
        FileSizeLimit limit(64 * 1024);
        phatgoose::writeFileAtomically(path, big);
        QFAIL("a write past the size limit succeeded");
    } catch (const phatgoose::Error& e) {
        const QString message = QString::fromUtf8(e.what());
        QVERIFY2(message.contains("target.txt"), qPrintable(message));
        QVERIFY2(message.contains(QString::fromUtf8(std::strerror(EFBIG))), qPrintable(message));
    }
    QCOMPARE(readBytes(path), std::string("old content"));
    QCOMPARE(folderEntries(dir), QStringList{"target.txt"});
}

void TestSafetensors::failedSafetensorsWriteLeavesTheTargetIntact() {
    QTemporaryDir dir;
    const auto path = pathIn(dir, "model.safetensors");
    const std::vector<char> small = patternBytes(16, 0), big = patternBytes(1 << 20, 1);
    phatgoose::writeSafetensors(path, {{"w", DType::F32, {4}, small.data()}});
    const std::string before = readBytes(path);
    {
        FileSizeLimit limit(64 * 1024);
        QVERIFY_THROWS_EXCEPTION(
            phatgoose::Error, phatgoose::writeSafetensors(path, {{"w", DType::F32, {1 << 18}, big.data()}}));
    }
    QCOMPARE(readBytes(path), before);
    QCOMPARE(folderEntries(dir), QStringList{"model.safetensors"});
}

void TestSafetensors::writeIntoMissingFolderFails() {
    QTemporaryDir dir;
    const auto path = pathIn(dir, "missing") / "target.txt";
    try {
        phatgoose::writeFileAtomically(path, "content");
        QFAIL("writing into a missing folder succeeded");
    } catch (const phatgoose::Error& e) {
        QVERIFY2(QString::fromUtf8(e.what()).contains(QString::fromStdString(path.string())), e.what());
    }
    QVERIFY(folderEntries(dir).isEmpty());
}

void TestSafetensors::throwingWriterLeavesNothingBehind() {
    QTemporaryDir dir;
    const auto path = pathIn(dir, "target.txt");
    phatgoose::writeFileAtomically(path, "old content");
    QVERIFY_THROWS_EXCEPTION(std::runtime_error, phatgoose::writeFileAtomically(path, [](std::ostream& out) {
                                 out << "half";
                                 throw std::runtime_error("cancelled");
                             }));
    QCOMPARE(readBytes(path), std::string("old content"));
    QCOMPARE(folderEntries(dir), QStringList{"target.txt"});
}

QTEST_GUILESS_MAIN(TestSafetensors)
#include "test_safetensors.moc"

// The PyTorch zip checkpoint reader and writer. The writer's files are read back; files that mimic torch's
// own output more closely (another top folder, shared storages, memo opcodes, ZIP64) are assembled here
// byte by byte, independently of the writer; and hostile files must each end in a phatgoose::Error naming
// the file and the problem, never in a crash or a call of anything they name.
#include <QByteArray>
#include <QTemporaryDir>
#include <QtEndian>
#include <QtTest>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "error.h"
#include "model/pytorch_checkpoint.h"

using phatgoose::CheckpointTensor;
using phatgoose::DType;
using phatgoose::PytorchCheckpoint;
using phatgoose::TensorToSave;

namespace {

// Bit by bit, unlike the reader's table-driven CRC, so the two cannot share a mistake.
quint32 crc32(const QByteArray& bytes) {
    quint32 crc = 0xffffffff;
    for (const char c : bytes) {
        crc ^= static_cast<unsigned char>(c);
        for (int bit = 0; bit < 8; ++bit) crc = (crc & 1) ? 0xedb88320u ^ (crc >> 1) : crc >> 1;
    }
    return ~crc;
}

QByteArray le(quint64 value, int bytes) {
    QByteArray out;
    for (int i = 0; i < bytes; ++i) out.append(static_cast<char>((value >> (8 * i)) & 0xff));
    return out;
}

QByteArray le16(quint64 value) {
    return le(value, 2);
}
QByteArray le32(quint64 value) {
    return le(value, 4);
}
QByteArray le64(quint64 value) {
    return le(value, 8);
}

struct ZipEntry {
    QByteArray name;
    QByteArray data;
};

struct ZipOptions {
    bool align = true;   // torch pads records to 64 bytes; the reader must not rely on it
    bool zip64 = false;  // every size and offset through ZIP64 fields, as a >4 GiB file has them
};

QByteArray localHeader(const ZipEntry& entry, quint64 offset, const ZipOptions& options) {
    const quint64 size = entry.data.size();
    QByteArray extra;
    if (options.zip64) extra += le16(1) + le16(16) + le64(size) + le64(size);
    if (options.align) {
        const quint64 unpadded = offset + 30 + entry.name.size() + extra.size() + 4;
        const quint64 padding = (64 - unpadded % 64) % 64;
        extra += le16(0x4246) + le16(padding) + QByteArray(static_cast<int>(padding), 'Z');
    }
    const quint32 size32 = options.zip64 ? 0xffffffffu : static_cast<quint32>(size);
    return le32(0x04034b50) + le16(20) + le16(0) + le16(0) + le16(0) + le16(0x21) + le32(crc32(entry.data)) +
           le32(size32) + le32(size32) + le16(entry.name.size()) + le16(extra.size()) + entry.name + extra;
}

QByteArray centralHeader(const ZipEntry& entry, quint64 offset, const ZipOptions& options) {
    const quint64 size = entry.data.size();
    const QByteArray extra = options.zip64 ? le16(1) + le16(24) + le64(size) + le64(size) + le64(offset) : "";
    const quint32 size32 = options.zip64 ? 0xffffffffu : static_cast<quint32>(size);
    const quint32 offset32 = options.zip64 ? 0xffffffffu : static_cast<quint32>(offset);
    return le32(0x02014b50) + le16(45) + le16(20) + le16(0) + le16(0) + le16(0) + le16(0x21) +
           le32(crc32(entry.data)) + le32(size32) + le32(size32) + le16(entry.name.size()) +
           le16(extra.size()) + le16(0) + le16(0) + le16(0) + le32(0) + le32(offset32) + entry.name + extra;
}

QByteArray endRecords(quint64 entries, quint64 offset, quint64 size, bool zip64) {
    QByteArray out;
    if (zip64) {
        out += le32(0x06064b50) + le64(44) + le16(45) + le16(45) + le32(0) + le32(0) + le64(entries) +
               le64(entries) + le64(size) + le64(offset);
        out += le32(0x07064b50) + le32(0) + le64(offset + size) + le32(1);
        return out + le32(0x06054b50) + le32(0) + le16(0xffff) + le16(0xffff) + le32(0xffffffff) +
               le32(0xffffffff) + le16(0);
    }
    return le32(0x06054b50) + le32(0) + le16(entries) + le16(entries) + le32(size) + le32(offset) + le16(0);
}

// A stored zip archive assembled by hand, as torch's miniz-based writer lays it out.
QByteArray buildZip(const std::vector<ZipEntry>& entries, const ZipOptions& options = {}) {
    QByteArray out;
    QByteArray directory;
    for (const ZipEntry& entry : entries) {
        const quint64 offset = out.size();
        out += localHeader(entry, offset, options) + entry.data;
        directory += centralHeader(entry, offset, options);
    }
    const quint64 directory_offset = out.size();
    return out + directory + endRecords(entries.size(), directory_offset, directory.size(), options.zip64);
}

// Pickle opcodes, written out by hand.
class Pickle {
public:
    Pickle() : bytes_("\x80\x02", 2) {}
    static Pickle bare() {
        Pickle p;
        p.bytes_.clear();
        return p;
    }
    QByteArray bytes() const { return bytes_; }

    Pickle& op(char code) { return raw(QByteArray(1, code)); }
    Pickle& raw(const QByteArray& bytes) {
        bytes_ += bytes;
        return *this;
    }
    Pickle& global(const char* module, const char* name) {
        return op('c').raw(QByteArray(module) + '\n' + name + '\n');
    }
    Pickle& str(const QByteArray& text) { return op('X').raw(le32(text.size()) + text); }
    Pickle& shortStr(const QByteArray& text) { return op('\x8c').raw(le(text.size(), 1) + text); }
    Pickle& integer(qint64 value) {
        if (value >= 0 && value < 256) return op('K').raw(le(value, 1));
        return op('J').raw(le32(static_cast<quint64>(value)));
    }
    Pickle& long1(qint64 value) { return op('\x8a').raw(le(8, 1) + le64(static_cast<quint64>(value))); }
    Pickle& put(int index) { return op('q').raw(le(index, 1)); }
    Pickle& get(int index) { return op('h').raw(le(index, 1)); }
    Pickle& memoize() { return op('\x94'); }
    Pickle& mark() { return op('('); }
    Pickle& tuple() { return op('t'); }
    Pickle& stop() { return op('.'); }
    Pickle& ints(const QList<qint64>& values) {
        mark();
        for (qint64 value : values) integer(value);
        return tuple();
    }
    Pickle& emptyOrderedDict() { return global("collections", "OrderedDict").op(')').op('R'); }
    Pickle& storage(const char* type, const char* key, qint64 numel) {
        return mark().str("storage").global("torch", type).str(key).str("cpu").integer(numel).tuple().op('Q');
    }
    Pickle& tensor(const char* type, const char* key, qint64 numel, qint64 offset, const QList<qint64>& sizes,
                   const QList<qint64>& strides) {
        global("torch._utils", "_rebuild_tensor_v2").mark().storage(type, key, numel).integer(offset);
        return ints(sizes).ints(strides).op('\x89').emptyOrderedDict().tuple().op('R');
    }

private:
    QByteArray bytes_;
};

// OrderedDict() + MARK, ready for key/value pairs and then finish().
Pickle stateDict() {
    Pickle p;
    p.emptyOrderedDict().mark();
    return p;
}

QByteArray finish(Pickle& p) {
    return p.op('u').stop().bytes();
}

// A one-tensor state dict {'w': tensor} over storage "0" of `numel` floats.
QByteArray oneTensor(qint64 numel, qint64 offset, const QList<qint64>& sizes, const QList<qint64>& strides) {
    Pickle p = stateDict();
    p.str("w").tensor("FloatStorage", "0", numel, offset, sizes, strides);
    return finish(p);
}

QByteArray floats(int count, float start = 0.0f) {
    QByteArray out;
    for (int i = 0; i < count; ++i) {
        const float value = start + 1.5f * static_cast<float>(i);
        out += QByteArray(reinterpret_cast<const char*>(&value), sizeof value);
    }
    return out;
}

// A checkpoint archive around `pickle` with storage "0" holding 4 floats.
QByteArray checkpointZip(const QByteArray& pickle, const QByteArray& storage = floats(4)) {
    return buildZip({{"archive/data.pkl", pickle}, {"archive/version", "3\n"}, {"archive/data/0", storage}});
}

void writeBytes(const std::filesystem::path& path, const QByteArray& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.constData(), bytes.size());
    QVERIFY2(out.good(), path.c_str());
}

QByteArray readBytes(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream content;
    content << in.rdbuf();
    return QByteArray::fromStdString(content.str());
}

std::filesystem::path pathIn(const QTemporaryDir& dir, const char* name) {
    return std::filesystem::path(dir.path().toStdString()) / name;
}

QByteArray tensorBytes(const PytorchCheckpoint& checkpoint, const CheckpointTensor& tensor) {
    QByteArray out(static_cast<qsizetype>(tensor.byte_size), '\0');
    checkpoint.read(tensor, out.data());
    return out;
}

QByteArray patterned(size_t size, int seed) {
    QByteArray bytes(static_cast<qsizetype>(size), '\0');
    for (size_t i = 0; i < size; ++i)
        bytes[static_cast<qsizetype>(i)] = static_cast<char>((i * 31 + seed * 7 + 1));
    return bytes;
}

QString errorOf(const std::function<void()>& action) {
    try {
        action();
    } catch (const phatgoose::Error& error) {
        return QString::fromStdString(error.what());
    }
    return {};
}

// Both the file reader and the in-memory reader must refuse `bytes` naming the file and `fragment`.
void expectRefusal(const QTemporaryDir& dir, const QByteArray& bytes, const QString& fragment) {
    const std::filesystem::path path = pathIn(dir, "hostile.pt");
    writeBytes(path, bytes);
    const QString message = errorOf([&] { PytorchCheckpoint::open(path); });
    QVERIFY2(!message.isEmpty(), "the file was accepted");
    QVERIFY2(message.startsWith(QString::fromStdString(path.string()) + ": "), qPrintable(message));
    QVERIFY2(message.contains(fragment), qPrintable(message));
    const QString in_memory = errorOf([&] {
        phatgoose::parsePytorchCheckpoint(std::string_view(bytes.constData(), bytes.size()), path.string());
    });
    QCOMPARE(in_memory, message);
}

QByteArray patch(QByteArray bytes, qsizetype at, const QByteArray& replacement) {
    bytes.replace(at, replacement.size(), replacement);
    return bytes;
}

}  // namespace

class TestPytorchCheckpoint : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void roundTrip_data();
    void roundTrip();
    void manyTensorsRoundTrip();
    void writerChecksumsMatch();
    void mimicTorch_data();
    void mimicTorch();
    void zip64_data();
    void zip64();
    void hostilePickle_data();
    void hostilePickle();
    void hostileFile_data();
    void hostileFile();
    void truncated_data();
    void truncated();
    void pickleSizeLimit();
    void largeTensorInPieces();
    void readOutsideTheTensor();
    void unreadableFiles();
    void moveKeepsTheFile();
    void writerRefuses_data();
    void writerRefuses();
    void fuzzEntryPoints();
};

void TestPytorchCheckpoint::roundTrip_data() {
    QTest::addColumn<int>("dtype");
    QTest::addColumn<QList<qint64>>("shape");
    QTest::newRow("f32 matrix") << static_cast<int>(DType::F32) << QList<qint64>{3, 5};
    QTest::newRow("f16 odd vector") << static_cast<int>(DType::F16) << QList<qint64>{7};
    QTest::newRow("bf16 3d") << static_cast<int>(DType::BF16) << QList<qint64>{2, 3, 5};
    QTest::newRow("f32 4d with ones") << static_cast<int>(DType::F32) << QList<qint64>{2, 1, 3, 1};
    QTest::newRow("f32 scalar") << static_cast<int>(DType::F32) << QList<qint64>{};
    QTest::newRow("bf16 scalar") << static_cast<int>(DType::BF16) << QList<qint64>{};
    QTest::newRow("f16 zero-size") << static_cast<int>(DType::F16) << QList<qint64>{0, 4};
    QTest::newRow("f32 zero-size inner") << static_cast<int>(DType::F32) << QList<qint64>{3, 0};
}

void TestPytorchCheckpoint::roundTrip() {
    QFETCH(int, dtype);
    QFETCH(QList<qint64>, shape);
    QTemporaryDir dir;
    const std::filesystem::path path = pathIn(dir, "round.pt");
    const DType type = static_cast<DType>(dtype);
    qint64 numel = 1;
    for (qint64 dim : shape) numel *= dim;
    const QByteArray data = patterned(static_cast<size_t>(numel) * phatgoose::dtypeSize(type), 1);
    const QByteArray other = patterned(13 * 4, 2);
    phatgoose::writePytorchCheckpoint(
        path, {{"before", DType::F32, {13}, other.constData()},
               {"layer.0.weight", type, std::vector<int64_t>(shape.begin(), shape.end()), data.constData()}});

    const PytorchCheckpoint checkpoint = PytorchCheckpoint::open(path);
    QCOMPARE(checkpoint.tensors().size(), size_t{2});
    QCOMPARE(checkpoint.fileSize(), static_cast<uint64_t>(std::filesystem::file_size(path)));
    const CheckpointTensor* tensor = checkpoint.find("layer.0.weight");
    QVERIFY(tensor);
    QCOMPARE(tensor, &checkpoint.tensors()[1]);
    QVERIFY(tensor->dtype == type);
    QCOMPARE(tensor->shape, std::vector<int64_t>(shape.begin(), shape.end()));
    QCOMPARE(tensor->byte_size, static_cast<uint64_t>(data.size()));
    QCOMPARE(tensor->storage, std::string("1"));
    QCOMPARE(tensorBytes(checkpoint, *tensor), data);
    QCOMPARE(tensorBytes(checkpoint, checkpoint.tensors()[0]), other);
    QCOMPARE(checkpoint.tensors()[0].file_offset % 64, uint64_t{0});
    if (tensor->byte_size > 0) QCOMPARE(tensor->file_offset % 64, uint64_t{0});
    QVERIFY(!checkpoint.find("missing"));
}

// More than one SETITEMS batch (1000 items) and memo indices beyond 255 (LONG_BINPUT/LONG_BINGET).
void TestPytorchCheckpoint::manyTensorsRoundTrip() {
    QTemporaryDir dir;
    const std::filesystem::path path = pathIn(dir, "many.pt");
    constexpr int kCount = 1201;
    std::vector<QByteArray> data;
    std::vector<TensorToSave> tensors;
    for (int i = 0; i < kCount; ++i) data.push_back(patterned(static_cast<size_t>(i % 5) * 2, i));
    for (int i = 0; i < kCount; ++i) {
        tensors.push_back({std::string("t").append(std::to_string(i)),
                           DType::F16,
                           {i % 5},
                           data[static_cast<size_t>(i)].constData()});
    }
    phatgoose::writePytorchCheckpoint(path, tensors);
    const PytorchCheckpoint checkpoint = PytorchCheckpoint::open(path);
    QCOMPARE(checkpoint.tensors().size(), size_t{kCount});
    for (int i = 0; i < kCount; ++i) {
        const CheckpointTensor& tensor = checkpoint.tensors()[static_cast<size_t>(i)];
        QCOMPARE(tensor.name, std::string("t").append(std::to_string(i)));
        QCOMPARE(tensorBytes(checkpoint, tensor), data[static_cast<size_t>(i)]);
    }
}

// torch verifies every record's CRC-32, so the writer's must be right for data the reader never checks.
void TestPytorchCheckpoint::writerChecksumsMatch() {
    QTemporaryDir dir;
    const std::filesystem::path path = pathIn(dir, "crc.pt");
    const QByteArray data = patterned(4 * 7, 9);
    phatgoose::writePytorchCheckpoint(path, {{"w", DType::F32, {7}, data.constData()}});
    const QByteArray file = readBytes(path);
    const qsizetype name = file.indexOf("archive/data/0");
    QVERIFY(name >= 30);
    const qsizetype header = name - 30;
    QCOMPARE(file.mid(header, 4), le32(0x04034b50));
    QCOMPARE(file.mid(header + 14, 4), le32(crc32(data)));
    QCOMPARE(file.mid(header + 18, 4), le32(static_cast<quint64>(data.size())));
    QVERIFY(file.contains("archive/version"));
    QVERIFY(file.contains("archive/byteorder"));
}

// The layout torch writes, beyond what our writer produces: the top folder named after the file's stem,
// markers the reader ignores, two tensors (and a scalar) sharing one storage at different offsets, a
// BFloat16 storage named through STACK_GLOBAL, BINPUT/BINGET/MEMOIZE, SHORT_BINUNICODE and LONG1, and
// either a plain dict or an OrderedDict carrying `_metadata` through BUILD, as model.state_dict() does.
QByteArray mimicPickle(bool ordered) {
    Pickle p;
    if (ordered) {
        p.global("collections", "OrderedDict").put(100).op(')').op('R').put(0);
    } else {
        p.op('}').put(0);
    }
    p.mark();
    // 'a': storage "0" elements [2, 8) as 2x3
    p.str("a").put(1).global("torch._utils", "_rebuild_tensor_v2").put(2).mark();
    p.mark().str("storage").put(3).global("torch", "FloatStorage").put(4).str("0").put(5).str("cpu").put(6);
    p.integer(10).tuple().put(7).op('Q');
    p.integer(2).integer(2).integer(3).op('\x86').put(8).integer(3).integer(1).op('\x86').put(9).op('\x89');
    p.global("collections", "OrderedDict").put(10).op(')').op('R').put(11).tuple().put(12).op('R').put(13);
    // 'b': the same storage, elements [8, 10)
    p.str("b").memoize().get(2).mark();
    p.mark().get(3).get(4).str("0").memoize().get(6).integer(10).tuple().memoize().op('Q');
    p.integer(8).integer(2).op('\x85').memoize().integer(1).op('\x85').memoize().op('\x88');
    p.get(10).op(')').op('R').memoize().tuple().memoize().op('R').memoize();
    // 'c': a BFloat16 storage "1" of 6 elements as 3x2
    p.shortStr("c").memoize().get(2).mark();
    p.mark().get(3).shortStr("torch").shortStr("BFloat16Storage").op('\x93').shortStr("1").get(6);
    p.long1(6).tuple().op('Q');
    p.integer(0).integer(3).integer(2).op('\x86').integer(2).integer(1).op('\x86').op('\x89');
    p.get(10).op(')').op('R').tuple().op('R');
    // 'd': a scalar, element 9 of storage "0"
    p.str("d").get(2).mark().mark().get(3).get(4).str("0").get(6).integer(10).tuple().op('Q');
    p.integer(9).op(')').op(')').op('\x89').get(10).op(')').op('R').tuple().op('R');
    p.op('u');
    if (ordered) {
        p.op('}').str("_metadata").get(100).op(')').op('R').str("").op('}').str("version").integer(1);
        p.op('s').op('s').op('s').op('b');
    }
    return p.stop().bytes();
}

void TestPytorchCheckpoint::mimicTorch_data() {
    QTest::addColumn<bool>("ordered");
    QTest::addColumn<bool>("aligned");
    QTest::newRow("plain dict, aligned") << false << true;
    QTest::newRow("plain dict, unaligned") << false << false;
    QTest::newRow("OrderedDict with _metadata, aligned") << true << true;
    QTest::newRow("OrderedDict with _metadata, unaligned") << true << false;
}

void TestPytorchCheckpoint::mimicTorch() {
    QFETCH(bool, ordered);
    QFETCH(bool, aligned);
    QTemporaryDir dir;
    const std::filesystem::path path = pathIn(dir, "mymodel.pt");
    const QByteArray storage0 = floats(10, 0.25f);
    const QByteArray storage1 = patterned(12, 5);
    const std::vector<ZipEntry> entries = {
        {"mymodel/data.pkl", mimicPickle(ordered)},
        {"mymodel/.format_version", "1"},
        {"mymodel/.storage_alignment", "64"},
        {"mymodel/byteorder", "little"},
        {"mymodel/data/0", storage0},
        {"mymodel/data/1", storage1},
        {"mymodel/version", "3\n"},
        {"mymodel/.data/serialization_id", "1234567890123456789012345678"}};
    ZipOptions options;
    options.align = aligned;
    writeBytes(path, buildZip(entries, options));

    const PytorchCheckpoint checkpoint = PytorchCheckpoint::open(path);
    QCOMPARE(checkpoint.tensors().size(), size_t{4});
    const std::vector<std::string> names = {"a", "b", "c", "d"};
    for (size_t i = 0; i < names.size(); ++i) QCOMPARE(checkpoint.tensors()[i].name, names[i]);
    const CheckpointTensor& a = *checkpoint.find("a");
    QCOMPARE(a.shape, (std::vector<int64_t>{2, 3}));
    QCOMPARE(tensorBytes(checkpoint, a), storage0.mid(2 * 4, 6 * 4));
    const CheckpointTensor& b = *checkpoint.find("b");
    QCOMPARE(b.storage, std::string("0"));
    QCOMPARE(b.shape, (std::vector<int64_t>{2}));
    QCOMPARE(tensorBytes(checkpoint, b), storage0.mid(8 * 4, 2 * 4));
    QCOMPARE(b.file_offset, a.file_offset + 6 * 4);
    const CheckpointTensor& c = *checkpoint.find("c");
    QVERIFY(c.dtype == DType::BF16);
    QCOMPARE(c.shape, (std::vector<int64_t>{3, 2}));
    QCOMPARE(tensorBytes(checkpoint, c), storage1);
    const CheckpointTensor& d = *checkpoint.find("d");
    QVERIFY(d.shape.empty());
    QCOMPARE(tensorBytes(checkpoint, d), storage0.mid(9 * 4, 4));
}

void TestPytorchCheckpoint::zip64_data() {
    QTest::addColumn<bool>("by_hand");
    QTest::newRow("writer, forced") << false;
    QTest::newRow("assembled by hand") << true;
}

void TestPytorchCheckpoint::zip64() {
    QFETCH(bool, by_hand);
    QTemporaryDir dir;
    const std::filesystem::path path = pathIn(dir, "big.pt");
    const QByteArray data = patterned(2 * 9, 3);
    if (by_hand) {
        Pickle p = stateDict();
        p.str("w").tensor("HalfStorage", "0", 9, 0, {3, 3}, {3, 1});
        ZipOptions options;
        options.zip64 = true;
        writeBytes(
            path,
            buildZip({{"archive/data.pkl", finish(p)}, {"archive/version", "3\n"}, {"archive/data/0", data}},
                     options));
    } else {
        phatgoose::CheckpointWriteOptions options;
        options.force_zip64 = true;
        phatgoose::writePytorchCheckpoint(path, {{"w", DType::F16, {3, 3}, data.constData()}}, options);
    }
    const QByteArray file = readBytes(path);
    QVERIFY(file.contains(le32(0x06064b50)));
    QVERIFY(file.contains(le32(0x07064b50)));
    const PytorchCheckpoint checkpoint = PytorchCheckpoint::open(path);
    QCOMPARE(checkpoint.tensors().size(), size_t{1});
    QCOMPARE(tensorBytes(checkpoint, checkpoint.tensors()[0]), data);
}

void TestPytorchCheckpoint::hostilePickle_data() {
    QTest::addColumn<QByteArray>("pickle");
    QTest::addColumn<QString>("fragment");
    const QString refused =
        "refused to load: the pickle names the global '%1', which this reader never executes";
    QTest::newRow("os.system")
        << Pickle().global("os", "system").str("true").op('\x85').op('R').stop().bytes()
        << refused.arg("os.system");
    QTest::newRow("builtins.eval")
        << Pickle().global("builtins", "eval").str("1").op('\x85').op('R').stop().bytes()
        << refused.arg("builtins.eval");
    QTest::newRow("posix.system via STACK_GLOBAL") << Pickle()
                                                          .shortStr("posix")
                                                          .shortStr("system")
                                                          .op('\x93')
                                                          .str("id")
                                                          .op('\x85')
                                                          .op('R')
                                                          .stop()
                                                          .bytes()
                                                   << refused.arg("posix.system");
    QTest::newRow("subprocess.Popen inside a state dict") << [] {
        Pickle p = stateDict();
        p.str("w").global("subprocess", "Popen").str("sh").op('\x85').op('R');
        return finish(p);
    }() << refused.arg("subprocess.Popen");
    QTest::newRow("torch.storage.UntypedStorage")
        << Pickle().global("torch.storage", "UntypedStorage").stop().bytes()
        << refused.arg("torch.storage.UntypedStorage");
    QTest::newRow("storage record shorter than numel")
        << oneTensor(8, 0, {8}, {1}) << "holds 16 bytes, but the pickle says 8 F32 elements";
    QTest::newRow("offset + numel beyond storage") << oneTensor(4, 2, {3}, {1}) << "exceed its storage '0'";
    QTest::newRow("non-contiguous strides")
        << oneTensor(4, 0, {2, 2}, {1, 2}) << "not the contiguous strides";
    QTest::newRow("negative size") << oneTensor(4, 0, {-1, 4}, {4, 1})
                                   << "tensor 'w': size -1 of dimension 0";
    QTest::newRow("negative offset") << oneTensor(4, -1, {2}, {1}) << "storage offset -1 is negative";
    QTest::newRow("overflowing shape")
        << oneTensor(4, 0, {1 << 30, 1 << 30, 1 << 30}, {1, 1, 1}) << "overflows 64 bits";
    QTest::newRow("int value") << [] {
        Pickle p = stateDict();
        p.str("step").integer(5);
        return finish(p);
    }() << "entry 'step' of the state dict holds an int (5), not a tensor";
    QTest::newRow("nested dict value") << [] {
        Pickle p = stateDict();
        p.str("model").emptyOrderedDict();
        return finish(p);
    }() << "entry 'model' of the state dict holds an OrderedDict";
    QTest::newRow("duplicate keys") << [] {
        Pickle p = stateDict();
        p.str("w").tensor("FloatStorage", "0", 4, 0, {4}, {1});
        p.str("w").tensor("FloatStorage", "0", 4, 0, {2}, {1});
        return finish(p);
    }() << "the dict repeats the key 'w'";
    QTest::newRow("top level is a list")
        << Pickle().op(']').stop().bytes() << "holds a list, not a state dict";
    QTest::newRow("self-referential list") << [] {
        Pickle p = stateDict();
        p.str("loop").op(']').put(0).get(0).op('a');
        return finish(p);
    }() << "entry 'loop' of the state dict holds a list";
    QTest::newRow("unknown opcode") << Pickle().op('}').op('\xff').stop().bytes()
                                    << "offset 3: unsupported pickle opcode 0xff";
    QTest::newRow("BINSTRING") << Pickle().op('T').raw(le32(1) + "x").stop().bytes()
                               << "unsupported pickle opcode 0x54 ('T')";
    QTest::newRow("bytes object") << Pickle().op('C').raw(le(1, 1) + "x").stop().bytes() << "a bytes object";
    QTest::newRow("memo get of an unset index")
        << Pickle().op('}').put(0).get(5).stop().bytes() << "memo entry 5, which was never stored";
    QTest::newRow("long memo get of an unset index")
        << Pickle().op('}').op('j').raw(le32(70000)).stop().bytes() << "memo entry 70000";
    QTest::newRow("deep MARK nesting")
        << Pickle().raw(QByteArray(1500, '(')).stop().bytes() << "nests MARKs deeper than 1000";
    QTest::newRow("deep tuple nesting") << Pickle().op('N').raw(QByteArray(1500, '\x85')).stop().bytes()
                                        << "nests containers deeper than 1000";
    QTest::newRow("deep list nesting") << [] {
        Pickle p;
        p.op(']').put(0);
        for (int i = 0; i < 1100; ++i) p.op(']').get(0).op('a').put(0);
        return p.stop().bytes();
    }() << "nests containers deeper than 1000";
    QTest::newRow("stack underflow") << Pickle().op('}').op('N').op('s').stop().bytes() << "stack underflow";
    QTest::newRow("MARK mismatch") << Pickle().op('}').mark().op('N').op('u').stop().bytes()
                                   << "SETITEMS has a key without a value";
    QTest::newRow("TUPLE without MARK") << Pickle().op('N').tuple().stop().bytes() << "none is open";
    QTest::newRow("MARK left open") << Pickle().op('}').mark().stop().bytes() << "MARK(s) still open";
    QTest::newRow("two values at STOP") << Pickle().op('}').op('}').stop().bytes() << "2 values on the stack";
    QTest::newRow("truncated string")
        << Pickle().op('X').raw(le32(100) + "abc").bytes() << "runs past the end";
    QTest::newRow("truncated BININT") << Pickle().op('J').raw("ab").bytes() << "runs past the end";
    QTest::newRow("no STOP") << Pickle().op('}').bytes() << "without a STOP";
    QTest::newRow("bytes after STOP") << Pickle().op('}').stop().op('N').bytes() << "1 bytes follow the STOP";
    QTest::newRow("protocol 1") << Pickle::bare().raw("\x80\x01}.").bytes()
                                << "unsupported pickle protocol 1";
    QTest::newRow("REDUCE on a storage class")
        << Pickle().global("torch", "FloatStorage").op(')').op('R').stop().bytes() << "never constructs";
    QTest::newRow("REDUCE on an int") << Pickle().integer(1).op(')').op('R').stop().bytes() << "not callable";
    QTest::newRow("OrderedDict with arguments")
        << Pickle().global("collections", "OrderedDict").op('N').op('\x85').op('R').stop().bytes()
        << "OrderedDict with arguments";
    QTest::newRow("persistent id that is not a storage")
        << Pickle().mark().str("module").str("x").str("y").str("z").integer(1).tuple().op('Q').stop().bytes()
        << "is not ('storage', type, key, location, numel)";
    QTest::newRow("storage named twice differently") << [] {
        Pickle p = stateDict();
        p.str("a").tensor("FloatStorage", "0", 4, 0, {4}, {1});
        p.str("b").tensor("HalfStorage", "0", 8, 0, {8}, {1});
        return finish(p);
    }() << "storage '0' is named twice";
    QTest::newRow("missing storage record") << [] {
        Pickle p = stateDict();
        p.str("w").tensor("FloatStorage", "7", 4, 0, {4}, {1});
        return finish(p);
    }() << "tensor 'w': its storage record 'archive/data/7' is missing";
    QTest::newRow("backward hooks") << [] {
        Pickle p = stateDict();
        p.str("w")
            .global("torch._utils", "_rebuild_tensor_v2")
            .mark()
            .storage("FloatStorage", "0", 4)
            .integer(0);
        p.ints({4}).ints({1}).op('\x89').op('}').str("h").op('N').op('s').tuple().op('R');
        return finish(p);
    }() << "backward hooks";
    QTest::newRow("integer beyond 64 bits")
        << Pickle().op('\x8a').raw(le(9, 1) + QByteArray(9, '\1')).stop().bytes()
        << "does not fit in 64 bits";
    QTest::newRow("invalid UTF-8") << Pickle().str("\xc3\x28").stop().bytes() << "not valid UTF-8";
    QTest::newRow("non-string key") << Pickle().op('}').integer(1).op('N').op('s').stop().bytes()
                                    << "a dict key is an int (1), not a string";
    QTest::newRow("object limit") << Pickle().raw(QByteArray(4200000, 'N')).stop().bytes()
                                  << "builds more than 4194304 objects";
}

void TestPytorchCheckpoint::hostilePickle() {
    QFETCH(QByteArray, pickle);
    QFETCH(QString, fragment);
    QTemporaryDir dir;
    expectRefusal(dir, checkpointZip(pickle), fragment);
    // Without an archive every storage "exists", so some rows pass there; none may crash.
    errorOf([&] {
        phatgoose::checkPickleForFuzzing(reinterpret_cast<const uint8_t*>(pickle.constData()),
                                         static_cast<size_t>(pickle.size()));
    });
}

void TestPytorchCheckpoint::hostileFile_data() {
    QTest::addColumn<QByteArray>("file");
    QTest::addColumn<QString>("fragment");
    const QString legacy =
        "a legacy (non-zip) PyTorch file; re-save it with torch.save(obj, path) from torch >= 1.6";
    const QByteArray valid = checkpointZip(oneTensor(4, 0, {4}, {1}));
    const qsizetype end = valid.size() - 22;
    const qsizetype directory =
        static_cast<qsizetype>(qFromLittleEndian<quint32>(valid.constData() + end + 16));

    QTest::newRow("plain pickle calling os.system")
        << Pickle().global("os", "system").str("true").op('\x85').op('R').stop().bytes() << legacy;
    QTest::newRow("legacy torch.save format") << Pickle()
                                                     .raw(QByteArray::fromHex("8a0a6cfc9c46f9206aa85019"))
                                                     .raw(Pickle().op('}').stop().bytes())
                                                     .bytes()
                                              << legacy;
    QTest::newRow("empty file") << QByteArray() << "the file is empty";
    QTest::newRow("text file") << QByteArray("just some text that is long enough") << "not a zip archive";
    QTest::newRow("central directory offset past the end")
        << patch(valid, end + 16, le32(0x7fffffff)) << "the central directory (offset 2147483647";
    QTest::newRow("central directory size past the end")
        << patch(valid, end + 12, le32(0x100000)) << "points past the end of the archive";
    QTest::newRow("local header offset past the records")
        << patch(valid, directory + 42, le32(static_cast<quint64>(directory) + 5))
        << "points past the records";
    QTest::newRow("entry size past the records")
        << patch(patch(valid, directory + 20, le32(0x10000)), directory + 24, le32(0x10000))
        << "run past the records";
    QTest::newRow("too many entries claimed")
        << patch(patch(valid, end + 8, le16(9000)), end + 10, le16(9000)) << "cannot hold them";
    QTest::newRow("compressed entry") << patch(patch(valid, 8, le16(8)), directory + 10, le16(8))
                                      << "entry 'archive/data.pkl' is compressed (method 8)";
    QTest::newRow("local name differs")
        << patch(valid, 30, "X") << "but the central directory says 'archive/data.pkl'";
    QTest::newRow("no local header") << patch(valid, 0, "XXXX") << "no local header at offset 0";
    QTest::newRow("bad central signature") << patch(valid, directory, "XXXX") << "has no valid signature";
    QTest::newRow("encrypted entry") << patch(valid, directory + 8, le16(1)) << "is encrypted";
    QTest::newRow("ZIP64 locator missing")
        << patch(valid, end + 16, le32(0xffffffff)) << "locator is missing";
    QTest::newRow("CRC mismatch in data.pkl") << [&] {
        QByteArray bytes = valid;
        const qsizetype pickle = bytes.indexOf("collections");
        bytes[pickle] = 'C';
        return bytes;
    }() << "fails its CRC-32 check";
    QTest::newRow("no data.pkl") << buildZip({{"archive/version", "3\n"}}) << "no entry 'archive/data.pkl'";
    QTest::newRow("no version") << buildZip({{"archive/data.pkl", Pickle().op('}').stop().bytes()}})
                                << "no entry 'archive/version'";
    QTest::newRow("unknown version") << buildZip({{"archive/data.pkl", "."}, {"archive/version", "99\n"}})
                                     << "unsupported checkpoint format version '99'";
    QTest::newRow("big-endian") << buildZip({{"archive/data.pkl", "."},
                                             {"archive/version", "3\n"},
                                             {"archive/byteorder", "big"}})
                                << "byte order is 'big'";
    QTest::newRow("TorchScript archive")
        << buildZip({{"archive/data.pkl", "."}, {"archive/constants.pkl", "."}, {"archive/version", "3\n"}})
        << "a TorchScript archive";
    QTest::newRow("entry outside the top folder")
        << buildZip({{"archive/data.pkl", "."}, {"other/version", "3\n"}})
        << "outside the archive's top folder";
    QTest::newRow("no top folder") << buildZip({{"data.pkl", "."}}) << "is not inside a top folder";
    QTest::newRow("duplicate entries") << buildZip({{"archive/data.pkl", "."}, {"archive/data.pkl", "."}})
                                       << "two entries named 'archive/data.pkl'";
}

void TestPytorchCheckpoint::hostileFile() {
    QFETCH(QByteArray, file);
    QFETCH(QString, fragment);
    QTemporaryDir dir;
    expectRefusal(dir, file, fragment);
}

void TestPytorchCheckpoint::truncated_data() {
    QTest::addColumn<int>("cut");  // bytes kept; negative: counted from the end
    for (int cut : {1, 4, 30, 100, 200, -100, -60, -23, -22, -21, -1}) {
        QTest::newRow(qPrintable(QString::number(cut))) << cut;
    }
}

void TestPytorchCheckpoint::truncated() {
    QFETCH(int, cut);
    QTemporaryDir dir;
    const std::filesystem::path whole = pathIn(dir, "whole.pt");
    const QByteArray a = patterned(4 * 6, 1);
    const QByteArray b = patterned(2 * 5, 2);
    phatgoose::writePytorchCheckpoint(
        whole, {{"a", DType::F32, {2, 3}, a.constData()}, {"b", DType::BF16, {5}, b.constData()}});
    const QByteArray bytes = readBytes(whole);
    const qsizetype keep = cut >= 0 ? cut : bytes.size() + cut;
    const std::filesystem::path path = pathIn(dir, "cut.pt");
    writeBytes(path, bytes.left(keep));
    const QString message = errorOf([&] { PytorchCheckpoint::open(path); });
    QVERIFY2(message.startsWith(QString::fromStdString(path.string()) + ": "), qPrintable(message));
}

// A data.pkl claiming 600 MiB (in a sparse file) is refused by its size before a byte of it is read.
void TestPytorchCheckpoint::pickleSizeLimit() {
    QTemporaryDir dir;
    const std::filesystem::path path = pathIn(dir, "huge.pt");
    ZipOptions options;
    options.align = false;
    const QByteArray zip = buildZip({{"archive/version", "3\n"}, {"archive/data.pkl", ""}}, options);
    const auto directory =
        static_cast<qsizetype>(qFromLittleEndian<quint32>(zip.constData() + zip.size() - 6));
    const qsizetype local = zip.indexOf("archive/data.pkl") - 30;
    const qsizetype central = zip.indexOf("archive/data.pkl", local + 31) - 46 - directory;
    constexpr quint64 kHuge = quint64{600} << 20;
    const QByteArray head =
        patch(patch(zip.left(directory), local + 18, le32(kHuge)), local + 22, le32(kHuge));
    QByteArray tail = patch(patch(zip.mid(directory), central + 20, le32(kHuge)), central + 24, le32(kHuge));
    tail = patch(tail, tail.size() - 6, le32(static_cast<quint64>(directory) + kHuge));
    {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out.write(head.constData(), head.size());
        out.seekp(static_cast<std::streamoff>(static_cast<quint64>(directory) + kHuge));
        out.write(tail.constData(), tail.size());
        QVERIFY(out.good());
    }
    const QString message = errorOf([&] { PytorchCheckpoint::open(path); });
    QVERIFY2(
        message.contains("entry 'archive/data.pkl' has 629145600 bytes, more than the limit of 536870912"),
        qPrintable(message));
}

// 8 MiB and a bit: read whole, then in uneven pieces that must concatenate to the same bytes.
void TestPytorchCheckpoint::largeTensorInPieces() {
    QTemporaryDir dir;
    const std::filesystem::path path = pathIn(dir, "large.pt");
    const QByteArray small = patterned(2 * 3, 4);
    const QByteArray data = patterned(size_t{2049} * 1024 * 4, 7);
    phatgoose::writePytorchCheckpoint(path, {{"small", DType::BF16, {3}, small.constData()},
                                             {"large", DType::F32, {2049, 1024}, data.constData()}});
    const PytorchCheckpoint checkpoint = PytorchCheckpoint::open(path);
    const CheckpointTensor& large = *checkpoint.find("large");
    QCOMPARE(large.byte_size, static_cast<uint64_t>(data.size()));
    QVERIFY(tensorBytes(checkpoint, large) == data);
    QByteArray pieces;
    constexpr uint64_t kPiece = (uint64_t{1} << 20) + 3;
    for (uint64_t offset = 0; offset < large.byte_size; offset += kPiece) {
        const uint64_t size = std::min(kPiece, large.byte_size - offset);
        QByteArray piece(static_cast<qsizetype>(size), '\0');
        checkpoint.read(large, offset, size, piece.data());
        pieces += piece;
    }
    QVERIFY(pieces == data);
}

void TestPytorchCheckpoint::readOutsideTheTensor() {
    QTemporaryDir dir;
    const std::filesystem::path path = pathIn(dir, "range.pt");
    const QByteArray data = patterned(4 * 4, 1);
    phatgoose::writePytorchCheckpoint(path, {{"w", DType::F32, {4}, data.constData()}});
    const PytorchCheckpoint checkpoint = PytorchCheckpoint::open(path);
    char buffer[32];
    QVERIFY(
        errorOf([&] { checkpoint.read(checkpoint.tensors()[0], 12, 8, buffer); }).contains("lie outside"));
    CheckpointTensor forged = checkpoint.tensors()[0];
    forged.file_offset = checkpoint.fileSize() - 4;
    QVERIFY(errorOf([&] { checkpoint.read(forged, buffer); }).contains("past the end of the file"));
}

void TestPytorchCheckpoint::unreadableFiles() {
    QTemporaryDir dir;
    QVERIFY(errorOf([&] { PytorchCheckpoint::open(pathIn(dir, "absent.pt")); }).contains("cannot open"));
    QVERIFY(
        errorOf([&] { PytorchCheckpoint::open(dir.path().toStdString()); }).contains("not a regular file"));
}

void TestPytorchCheckpoint::moveKeepsTheFile() {
    QTemporaryDir dir;
    const std::filesystem::path path = pathIn(dir, "move.pt");
    const QByteArray data = patterned(4 * 3, 2);
    phatgoose::writePytorchCheckpoint(path, {{"w", DType::F32, {3}, data.constData()}});
    PytorchCheckpoint first = PytorchCheckpoint::open(path);
    PytorchCheckpoint second(std::move(first));
    QCOMPARE(tensorBytes(second, *second.find("w")), data);
    PytorchCheckpoint third = PytorchCheckpoint::open(path);
    third = std::move(second);
    QCOMPARE(third.file(), path);
    QCOMPARE(tensorBytes(third, *third.find("w")), data);
}

void TestPytorchCheckpoint::writerRefuses_data() {
    QTest::addColumn<int>("which");
    QTest::addColumn<QString>("fragment");
    QTest::newRow("duplicate names") << 0 << "tensor 'w' appears twice";
    QTest::newRow("unsupported dtype") << 1 << "dtype I64 cannot be saved";
    QTest::newRow("negative size") << 2 << "a negative size";
    QTest::newRow("no data") << 3 << "no data was given";
    QTest::newRow("missing folder") << 4 << "cannot write";
}

void TestPytorchCheckpoint::writerRefuses() {
    QFETCH(int, which);
    QFETCH(QString, fragment);
    QTemporaryDir dir;
    const QByteArray data = patterned(64, 1);
    std::vector<TensorToSave> tensors = {{"w", DType::F32, {2}, data.constData()}};
    std::filesystem::path path = pathIn(dir, "out.pt");
    if (which == 0) tensors.push_back(tensors[0]);
    if (which == 1) tensors[0].dtype = DType::I64;
    if (which == 2) tensors[0].shape = {-2};
    if (which == 3) tensors[0].data = nullptr;
    if (which == 4) path = pathIn(dir, "missing") / "out.pt";
    const QString message = errorOf([&] { phatgoose::writePytorchCheckpoint(path, tensors); });
    QVERIFY2(message.contains(fragment), qPrintable(message));
    QVERIFY(!std::filesystem::exists(path));
}

void TestPytorchCheckpoint::fuzzEntryPoints() {
    const QByteArray pickle = oneTensor(4, 0, {2, 2}, {2, 1});
    phatgoose::checkPickleForFuzzing(reinterpret_cast<const uint8_t*>(pickle.constData()),
                                     static_cast<size_t>(pickle.size()));
    const QByteArray file = checkpointZip(pickle);
    const auto tensors =
        phatgoose::parsePytorchCheckpoint(std::string_view(file.constData(), file.size()), "mem");
    QCOMPARE(tensors.size(), size_t{1});
    QCOMPARE(tensors[0].shape, (std::vector<int64_t>{2, 2}));
    QCOMPARE(file.mid(static_cast<qsizetype>(tensors[0].file_offset), 16), floats(4));
}

QTEST_GUILESS_MAIN(TestPytorchCheckpoint)
#include "test_pytorch_checkpoint.moc"

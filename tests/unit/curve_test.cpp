// CURVE keys and key files (common/include/taskpipe/curve.hpp).
//
// "A key is 32 bytes, written as the 40-character Z85 text ZeroMQ uses." "A secret key file
// (NAME.key) holds both keys and must not be readable or writable by anyone but its owner
// (mode & 077 == 0); a public key file (NAME.pub) holds only the public key."

#include "taskpipe/curve.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace taskpipe {
namespace {

namespace fs = std::filesystem;

// A key pair from the ZeroMQ reference manual (zmq_curve(7)).
constexpr const char* kPublic = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
constexpr const char* kSecret = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6";

class TempDirectory {
  public:
    TempDirectory() {
        std::string pattern = (fs::temp_directory_path() / "taskpipe-curve-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
        path_ = pattern;
    }
    ~TempDirectory() {
        std::error_code ignored;
        fs::remove_all(path_, ignored);
    }
    std::string file(const std::string& name) const { return (path_ / name).string(); }
    std::string write(const std::string& name, const std::string& text, mode_t mode) const {
        const std::string path = file(name);
        std::ofstream(path) << text;
        ::chmod(path.c_str(), mode);
        return path;
    }
    const fs::path& path() const { return path_; }

  private:
    fs::path path_;
};

std::string secret_file_text() {
    return std::string("curve\n    public-key = \"") + kPublic + "\"\n    secret-key = \"" +
           kSecret + "\"\n";
}

template <typename F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const KeyFileError& e) {
        return e.what();
    }
    return "(no error)";
}

TEST(Z85Key, AcceptsAKeyFromZmqCurveKeypair) {
    const CurveKeyPair pair = generate_key_pair();
    EXPECT_FALSE(z85_key_error(pair.public_key));
    EXPECT_FALSE(z85_key_error(pair.secret_key));
    EXPECT_FALSE(z85_key_error(kPublic));
}

TEST(Z85Key, RefusesAWrongLength) {
    EXPECT_EQ(*z85_key_error(std::string(kPublic).substr(0, 39)),
              "must be 40 Z85 characters, not 39");
    EXPECT_TRUE(z85_key_error(std::string(kPublic) + "x"));
    EXPECT_TRUE(z85_key_error(""));
}

TEST(Z85Key, RefusesCharactersOutsideZ85) {
    std::string key = kPublic;
    key[7] = '"';
    EXPECT_EQ(*z85_key_error(key), "has a character that is not Z85 at position 8");
    key[7] = ' ';
    EXPECT_TRUE(z85_key_error(key));
}

TEST(KeyFile, ParsesAZcertStyleSecretKeyFile) {
    const CurveKeyPair pair = parse_key_pair("#   comment\n\nmetadata\n" + secret_file_text(), "f");
    EXPECT_EQ(pair.public_key, kPublic);
    EXPECT_EQ(pair.secret_key, kSecret);
}

TEST(KeyFile, QuotesAreOptionalAndThePublicKeyIsDerivedWhenAbsent) {
    const CurveKeyPair pair = parse_key_pair(std::string("secret-key=") + kSecret + "\r\n", "f");
    EXPECT_EQ(pair.public_key, kPublic);
}

TEST(KeyFile, RefusesAPublicKeyThatDoesNotBelongToTheSecretKey) {
    const CurveKeyPair other = generate_key_pair();
    const std::string text =
        "public-key = " + other.public_key + "\nsecret-key = " + std::string(kSecret) + "\n";
    EXPECT_EQ(error_of([&] { parse_key_pair(text, "k.key"); }),
              "k.key: public-key does not belong to secret-key");
}

TEST(KeyFile, RefusesAMissingKey) {
    const std::string pub = std::string("public-key = ") + kPublic + "\n";
    EXPECT_EQ(error_of([&] { parse_key_pair(pub, "a.pub"); }),
              "a.pub holds no secret-key (is it a .pub file?)");
    EXPECT_EQ(error_of([&] { parse_public_key("curve\n", "b.pub"); }), "b.pub holds no public-key");
}

TEST(KeyFile, RefusesAMalformedKeyNamingTheLine) {
    EXPECT_EQ(error_of([&] { parse_public_key("# x\npublic-key = \"abc\"\n", "c.pub"); }),
              "c.pub line 2: public-key must be 40 Z85 characters, not 3");
    std::string bad = kPublic;
    bad[0] = '~';
    EXPECT_EQ(error_of([&] { parse_public_key("public-key = " + bad, "d.pub"); }),
              "d.pub line 1: public-key has a character that is not Z85 at position 1");
}

TEST(KeyFile, RefusesAKeyGivenTwice) {
    const std::string line = std::string("public-key = ") + kPublic + "\n";
    EXPECT_EQ(error_of([&] { parse_public_key(line + line, "e.pub"); }),
              "e.pub line 2: public-key given twice");
}

TEST(KeyFile, ASecretKeyFileOthersCanReadIsRefused) {
    TempDirectory dir;
    for (const mode_t mode : {0644u, 0640u, 0604u, 0620u, 0602u}) {
        const std::string path = dir.write("open.key", secret_file_text(), mode);
        const std::string error = error_of([&] { load_key_pair(path); });
        EXPECT_NE(error.find("is open to other users"), std::string::npos) << error;
        EXPECT_NE(error.find("chmod 600 " + path), std::string::npos) << error;
    }
    const std::string path = dir.write("closed.key", secret_file_text(), 0600);
    EXPECT_EQ(load_key_pair(path).public_key, kPublic);
    EXPECT_EQ(load_key_pair(dir.write("readonly.key", secret_file_text(), 0400)).secret_key,
              kSecret);
}

TEST(KeyFile, AMissingFileIsAnErrorNamingIt) {
    TempDirectory dir;
    const std::string error = error_of([&] { load_key_pair(dir.file("none.key")); });
    EXPECT_EQ(error, "cannot open " + dir.file("none.key") + ": No such file or directory");
}

// "Key files must be regular files ...; anything else (a FIFO, a device) is refused at once,
// without blocking." Opening a FIFO for reading would wait for a writer for ever.
TEST(KeyFile, AFifoOrADirectoryIsRefusedAtOnce) {
    TempDirectory dir;
    ASSERT_EQ(::mkfifo(dir.file("fifo.key").c_str(), 0600), 0);
    EXPECT_EQ(error_of([&] { load_key_pair(dir.file("fifo.key")); }),
              dir.file("fifo.key") + " is not a regular file");
    ASSERT_EQ(::mkfifo(dir.file("fifo.pub").c_str(), 0644), 0);
    EXPECT_EQ(error_of([&] { load_public_key(dir.file("fifo.pub")); }),
              dir.file("fifo.pub") + " is not a regular file");
    EXPECT_EQ(error_of([&] { load_allowed_keys(dir.path().string()); }),
              dir.file("fifo.pub") + " is not a regular file")
        << "a FIFO among the *.pub files of an allow-list directory";
    EXPECT_EQ(error_of([&] { load_public_key("/dev/null"); }), "/dev/null is not a regular file");
}

TEST(KeyFile, KeygenFilesRoundTripWithTheirModes) {
    TempDirectory dir;
    const CurveKeyPair pair = generate_key_pair();
    write_key_files(dir.file("w1"), pair);
    struct stat st {};
    ASSERT_EQ(::stat(dir.file("w1.key").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    ASSERT_EQ(::stat(dir.file("w1.pub").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0644u);
    const CurveKeyPair loaded = load_key_pair(dir.file("w1.key"));
    EXPECT_EQ(loaded.public_key, pair.public_key);
    EXPECT_EQ(loaded.secret_key, pair.secret_key);
    EXPECT_EQ(load_public_key(dir.file("w1.pub")), pair.public_key);
    EXPECT_EQ(error_of([&] { parse_key_pair(format_public_key_file(pair.public_key), "w1.pub"); }),
              "w1.pub holds no secret-key (is it a .pub file?)");
}

TEST(KeyFile, KeygenNeverOverwrites) {
    TempDirectory dir;
    dir.write("taken.pub", "precious", 0644);
    EXPECT_EQ(error_of([&] { write_key_files(dir.file("taken"), generate_key_pair()); }),
              dir.file("taken.pub") + " already exists; not overwriting it");
    EXPECT_FALSE(fs::exists(dir.file("taken.key")));
    std::ifstream in(dir.file("taken.pub"));
    EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "precious");
}

TEST(AllowList, ADirectoryMeansEveryPubFileInIt) {
    TempDirectory dir;
    const CurveKeyPair a = generate_key_pair();
    const CurveKeyPair b = generate_key_pair();
    dir.write("a.pub", format_public_key_file(a.public_key), 0644);
    dir.write("b.pub", format_public_key_file(b.public_key), 0644);
    dir.write("notes.txt", "not a key", 0644);
    auto keys = load_allowed_keys(dir.path().string());
    std::sort(keys.begin(), keys.end());
    std::vector<std::string> expected = {a.public_key, b.public_key};
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(keys, expected);
    EXPECT_EQ(load_allowed_keys(dir.file("a.pub")), std::vector<std::string>{a.public_key});
}

TEST(AllowList, AnEmptyDirectoryIsAnError) {
    TempDirectory dir;
    EXPECT_EQ(error_of([&] { load_allowed_keys(dir.path().string()); }),
              "no *.pub files in " + dir.path().string());
}

}  // namespace
}  // namespace taskpipe

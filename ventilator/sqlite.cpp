#include "sqlite.hpp"

#include <cstring>
#include <limits>
#include <utility>

namespace taskpipe::sqlite {
namespace {

// What an I/O error was doing, from its extended code ("" when not told).
const char* io_operation(int extended_code) {
    switch (extended_code) {
        case SQLITE_IOERR_READ:
        case SQLITE_IOERR_SHORT_READ:
            return " while reading";
        case SQLITE_IOERR_WRITE:
            return " while writing";
        case SQLITE_IOERR_FSYNC:
        case SQLITE_IOERR_DIR_FSYNC:
            return " while syncing to disk";
        case SQLITE_IOERR_TRUNCATE:
            return " while truncating";
        case SQLITE_IOERR_FSTAT:
            return " while reading file status";
        case SQLITE_IOERR_DELETE:
            return " while deleting";
        default:
            return "";
    }
}

// SQLite's message for the connection's last error, with what an I/O error was doing and the
// system's reason when SQLite kept it ("disk I/O error while writing: File too large").
std::string describe(sqlite3* db, int code) {
    std::string message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(code);
    if (db != nullptr) message += io_operation(sqlite3_extended_errcode(db));
    switch (code & 0xff) {
        case SQLITE_IOERR:
        case SQLITE_CANTOPEN:
        case SQLITE_FULL:
        case SQLITE_READONLY:
        case SQLITE_PERM:
            if (const int errno_value = db != nullptr ? sqlite3_system_errno(db) : 0;
                errno_value != 0) {
                message += ": ";
                message += std::strerror(errno_value);
            }
            break;
        default:
            break;
    }
    return message;
}

}  // namespace

Database::Database(const std::string& path, int flags) {
    const int rc = sqlite3_open_v2(path.c_str(), &db_, flags | SQLITE_OPEN_EXRESCODE, nullptr);
    if (rc != SQLITE_OK) {
        Error error(rc, describe(db_, rc));
        sqlite3_close_v2(db_);
        db_ = nullptr;
        throw error;
    }
}

Database::~Database() {
    if (db_ != nullptr) sqlite3_close_v2(db_);
}

Database::Database(Database&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}

Database& Database::operator=(Database&& other) noexcept {
    if (this != &other) {
        if (db_ != nullptr) sqlite3_close_v2(db_);
        db_ = std::exchange(other.db_, nullptr);
    }
    return *this;
}

void Database::close() {
    if (db_ == nullptr) return;
    if (const int rc = sqlite3_close(db_); rc != SQLITE_OK) fail(rc);
    db_ = nullptr;
}

void Database::exec(const char* sql) {
    if (const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr); rc != SQLITE_OK) {
        fail(rc);
    }
}

void Database::fail(int code) const {
    throw Error(sqlite3_extended_errcode(db_) != SQLITE_OK ? sqlite3_extended_errcode(db_) : code,
                describe(db_, code));
}

Statement::Statement(const Database& db, std::string_view sql) : db_(&db) {
    if (sql.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
        throw Error(SQLITE_TOOBIG, "SQL statement too long");
    }
    const int rc = sqlite3_prepare_v3(db.get(), sql.data(), static_cast<int>(sql.size()),
                                      SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
    if (rc != SQLITE_OK) db.fail(rc);
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

Statement::Statement(Statement&& other) noexcept
    : db_(other.db_), stmt_(std::exchange(other.stmt_, nullptr)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
    if (this != &other) {
        sqlite3_finalize(stmt_);
        db_ = other.db_;
        stmt_ = std::exchange(other.stmt_, nullptr);
    }
    return *this;
}

Query::~Query() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
}

void Query::check_bind(int rc) const {
    if (rc != SQLITE_OK) db_->fail(rc);
}

Query& Query::bind(int index, std::int64_t value) {
    check_bind(sqlite3_bind_int64(stmt_, index, value));
    return *this;
}

Query& Query::bind(int index, std::uint64_t value) {
    return bind(index, static_cast<std::int64_t>(value));
}

Query& Query::bind(int index, std::optional<std::int32_t> value) {
    check_bind(value ? sqlite3_bind_int(stmt_, index, *value) : sqlite3_bind_null(stmt_, index));
    return *this;
}

Query& Query::bind_blob(int index, std::string_view bytes) {
    // A null pointer would bind NULL, not an empty blob.
    check_bind(bytes.empty()
                   ? sqlite3_bind_zeroblob(stmt_, index, 0)
                   : sqlite3_bind_blob64(stmt_, index, bytes.data(), bytes.size(), SQLITE_STATIC));
    return *this;
}

Query& Query::bind_blob(int index, const std::optional<std::string>& bytes) {
    if (bytes) return bind_blob(index, std::string_view(*bytes));
    check_bind(sqlite3_bind_null(stmt_, index));
    return *this;
}

Query& Query::bind_text(int index, std::string_view text) {
    check_bind(sqlite3_bind_text64(stmt_, index, text.empty() ? "" : text.data(), text.size(),
                                   SQLITE_STATIC, SQLITE_UTF8));
    return *this;
}

bool Query::step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    db_->fail(rc);
}

void Query::run() {
    while (step()) {
    }
}

bool Query::is_null(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }

std::int64_t Query::int64(int column) const { return sqlite3_column_int64(stmt_, column); }

std::optional<std::int32_t> Query::optional_int32(int column) const {
    if (is_null(column)) return std::nullopt;
    return sqlite3_column_int(stmt_, column);
}

std::string Query::bytes(int column) const {
    const void* data = sqlite3_column_blob(stmt_, column);
    const int size = sqlite3_column_bytes(stmt_, column);
    if (data == nullptr || size <= 0) return {};
    return std::string(static_cast<const char*>(data), static_cast<std::size_t>(size));
}

std::optional<std::string> Query::optional_bytes(int column) const {
    if (is_null(column)) return std::nullopt;
    return bytes(column);
}

}  // namespace taskpipe::sqlite

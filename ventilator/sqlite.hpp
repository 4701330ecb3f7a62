// RAII for SQLite's C API, as small as the store needs: a connection, prepared statements, and
// one execution of a statement at a time.
//
// After {fmt}'s buffered_file: destructors are quiet (they close or reset and ignore errors),
// explicit calls are loud (they throw sqlite::Error). Move-only. Thread-safety: none; a
// Database and its statements belong to one thread.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace taskpipe::sqlite {

// A failing SQLite call: what() is SQLite's message (with the system's for an I/O error),
// code() its extended result code.
class Error : public std::runtime_error {
  public:
    Error(int code, const std::string& message) : std::runtime_error(message), code_(code) {}
    int code() const { return code_; }
    int primary_code() const { return code_ & 0xff; }

  private:
    int code_;
};

class Database {
  public:
    // sqlite3_open_v2(path, flags) with extended result codes. Throws Error.
    Database(const std::string& path, int flags);
    ~Database();
    Database(Database&& other) noexcept;
    Database& operator=(Database&& other) noexcept;
    Database(const Database&) = delete;
    Database& operator=(const Database&) = delete;

    // Closes the connection; throws Error when SQLite refuses (statements still open). The
    // destructor does the same and ignores failures.
    void close();

    // Runs one or more SQL statements that return no rows of interest. Throws Error.
    void exec(const char* sql);
    // The connection's last error as an Error (for `code`, the result of the failing call).
    [[noreturn]] void fail(int code) const;

    bool read_only() const { return sqlite3_db_readonly(db_, "main") == 1; }
    bool in_transaction() const { return sqlite3_get_autocommit(db_) == 0; }
    // Rows changed by the last INSERT, UPDATE or DELETE.
    std::int64_t changes() const { return sqlite3_changes64(db_); }
    sqlite3* get() const { return db_; }

  private:
    sqlite3* db_ = nullptr;
};

class Query;

// A prepared statement, kept for the life of the connection (which must outlive it).
class Statement {
  public:
    // No statement yet: assign a prepared one before use.
    Statement() = default;
    // Prepares `sql` (one statement) on `db`. Throws Error.
    Statement(const Database& db, std::string_view sql);
    ~Statement();
    Statement(Statement&& other) noexcept;
    Statement& operator=(Statement&& other) noexcept;
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;

    // Starts one execution. Only one Query of a statement may exist at a time.
    Query query();

  private:
    friend class Query;
    const Database* db_ = nullptr;
    sqlite3_stmt* stmt_ = nullptr;
};

// One execution of a Statement: bind the parameters (1-based), step through the rows, read the
// columns (0-based) of the current row. The destructor resets the statement and clears its
// bindings, so the next Query starts afresh whatever happened to this one. Blobs and text are
// bound without a copy: the bound bytes must stay alive and unchanged until the last step().
class Query {
  public:
    explicit Query(Statement& statement) : db_(statement.db_), stmt_(statement.stmt_) {}
    ~Query();
    Query(const Query&) = delete;
    Query& operator=(const Query&) = delete;

    Query& bind(int index, std::int64_t value);
    Query& bind(int index, std::uint64_t value);  // stored as the int64 of the same bits
    Query& bind(int index, std::optional<std::int32_t> value);  // nullopt: NULL
    Query& bind_blob(int index, std::string_view bytes);
    Query& bind_blob(int index, const std::optional<std::string>& bytes);  // nullopt: NULL
    Query& bind_text(int index, std::string_view text);

    // Moves to the next row: true when there is one, false when the statement is done. Throws
    // Error.
    bool step();
    // Steps a statement that returns no row; throws Error.
    void run();

    bool is_null(int column) const;
    std::int64_t int64(int column) const;
    std::uint64_t uint64(int column) const { return static_cast<std::uint64_t>(int64(column)); }
    std::optional<std::int32_t> optional_int32(int column) const;
    // A copy of a blob or text column ("" for NULL).
    std::string bytes(int column) const;
    std::optional<std::string> optional_bytes(int column) const;

  private:
    void check_bind(int rc) const;

    const Database* db_;
    sqlite3_stmt* stmt_;
};

inline Query Statement::query() { return Query(*this); }

}  // namespace taskpipe::sqlite

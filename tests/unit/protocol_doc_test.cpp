// docs/protocol.md against the schema that the codec runs on (message.hpp, schema.hpp).
//
// STYLE.md, "One description of the wire, many uses": "each message described once (key,
// member, type, required or default) in a table; encode, decode, validation, map size, the
// field tables of docs/protocol.md and the fuzz dictionary follow from it or are checked
// against it by a test." This is that test for the document: every message's table lists the
// schema's fields, in order, with the schema's wire type and its required flag or default, and
// the socket table names the messages of each socket's set.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <variant>
#include <vector>

#include "taskpipe/codec.hpp"
#include "taskpipe/message.hpp"

namespace taskpipe {
namespace {

// One row of a field table: `key` | type | required or default.
struct Row {
    std::string key;
    std::string type;
    std::string presence;
    friend bool operator==(const Row&, const Row&) = default;
};

std::string describe(const Row& row) {
    return "`" + row.key + "` | " + row.type + " | " + row.presence;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

std::string trim(std::string_view text) {
    const auto first = text.find_first_not_of(' ');
    if (first == std::string_view::npos) return "";
    const auto last = text.find_last_not_of(' ');
    return std::string(text.substr(first, last - first + 1));
}

// The cells of a markdown table line "| a | b |".
std::vector<std::string> cells(std::string_view line) {
    std::vector<std::string> out;
    line.remove_prefix(1);
    while (!line.empty()) {
        const auto bar = line.find('|');
        out.push_back(trim(line.substr(0, bar)));
        if (bar == std::string_view::npos) break;
        line.remove_prefix(bar + 1);
    }
    return out;
}

// The words between backticks in `text`.
std::vector<std::string> backticked(std::string_view text) {
    std::vector<std::string> words;
    for (;;) {
        const auto open = text.find('`');
        if (open == std::string_view::npos) return words;
        const auto close = text.find('`', open + 1);
        if (close == std::string_view::npos) return words;
        words.emplace_back(text.substr(open + 1, close - open - 1));
        text.remove_prefix(close + 1);
    }
}

// The field tables of the document, by message type, in order of appearance. A section starts
// at a heading "### `type` ..."; every table in it describes a form of that type (release has
// two). A row naming several keys ("`batch`, `id`") stands for one row per key.
std::map<std::string, std::vector<std::vector<Row>>> field_tables(const std::string& markdown) {
    std::map<std::string, std::vector<std::vector<Row>>> tables;
    std::string section;
    bool in_table = false;
    std::istringstream lines(markdown);
    for (std::string line; std::getline(lines, line);) {
        if (line.starts_with("#")) {
            section.clear();
            if (line.starts_with("### `")) section = backticked(line).front();
            in_table = false;
            continue;
        }
        if (section.empty() || !line.starts_with("|")) {
            in_table = false;
            continue;
        }
        if (!in_table) {  // the header row; the separator row follows
            in_table = true;
            tables[section].emplace_back();
            continue;
        }
        if (line.starts_with("|---")) continue;
        const std::vector<std::string> row = cells(line);
        if (row.size() < 3) continue;
        const std::vector<std::string> keys = backticked(row[0]);
        if (keys.empty()) {
            tables[section].back().push_back({row[0], row[1], row[2]});  // reported as it is
        }
        for (const std::string& key : keys) {
            tables[section].back().push_back({key, row[1], row[2]});
        }
    }
    return tables;
}

// --- What the schema says the tables hold ---------------------------------------------------

std::string type_name(Wire wire) {
    switch (wire) {
        case Wire::uint:
            return "uint";
        case Wire::int_or_nil:
            return "int or nil";
        case Wire::boolean:
            return "bool";
        case Wire::text:
        case Wire::status:
            return "str";
        case Wire::bytes:
            return "bytes";
        case Wire::ids:
            return "array of uint";
        case Wire::task_refs:
            return "array of `[batch, id]` pairs";
        case Wire::maps:
            return "array of maps";
    }
    return "?";
}

template <typename T>
std::string default_text(Wire wire, const T& value) {
    if constexpr (std::is_same_v<T, bool>) {
        return value ? "default true" : "default false";
    } else if constexpr (std::is_same_v<T, std::uint32_t> || std::is_same_v<T, std::uint64_t>) {
        return "default " + std::to_string(value);
    } else if constexpr (std::is_same_v<T, std::optional<std::int32_t>>) {
        return value ? "default " + std::to_string(*value) : "default nil";
    } else if constexpr (std::is_same_v<T, std::optional<std::string>>) {
        return value ? "default " + *value : "optional";
    } else if constexpr (std::is_same_v<T, std::string>) {
        if (wire == Wire::text) return "default \"" + value + "\"";
        return value.empty() ? "default empty" : "default " + value;
    } else if constexpr (std::is_same_v<T, Status>) {
        return std::string("default ") + to_string(value);
    } else if constexpr (is_grouped<T>) {
        return value.items.empty() ? "default empty" : "default (not empty)";
    } else if constexpr (requires { value.has_value(); }) {
        return value ? "default (not empty)" : "optional";  // a list that may be absent
    } else {
        return value.empty() ? "default empty" : "default (not empty)";
    }
}

template <typename M>
std::vector<Row> schema_rows() {
    const M defaults{};
    std::vector<Row> rows;
    std::apply(
        [&](const auto&... f) {
            (rows.push_back({std::string(f.key), type_name(f.wire),
                             f.presence == Presence::required
                                 ? "required"
                                 : default_text(f.wire, defaults.*f.member)}),
             ...);
        },
        M::fields);
    return rows;
}

template <typename Set>
std::set<std::string> type_names() {
    std::set<std::string> names;
    [&]<typename... Ms>(std::variant<Ms...>*) {
        (names.emplace(Ms::type), ...);
    }(static_cast<Set*>(nullptr));
    return names;
}

std::string join(const std::set<std::string>& names) {
    std::string out;
    for (const auto& name : names) out += (out.empty() ? "" : ", ") + name;
    return out;
}

// --- The check --------------------------------------------------------------------------------

// Every way the document disagrees with the schema, or nothing.
std::vector<std::string> differences(const std::string& markdown) {
    std::vector<std::string> found;
    auto tables = field_tables(markdown);
    std::map<std::string, std::size_t> forms;  // tables used so far, by type
    auto check = [&]<typename M>(M*) {
        const std::string type(M::type);
        const std::size_t form = forms[type]++;
        if (tables[type].size() <= form) {
            found.push_back("no field table for '" + type + "' (form " + std::to_string(form + 1) +
                            ")");
            return;
        }
        const std::vector<Row>& documented = tables[type][form];
        const std::vector<Row> expected = schema_rows<M>();
        for (std::size_t i = 0; i < std::max(documented.size(), expected.size()); ++i) {
            if (i < documented.size() && i < expected.size() && documented[i] == expected[i]) {
                continue;
            }
            found.push_back("'" + type + "' row " + std::to_string(i + 1) + ": the document has " +
                            (i < documented.size() ? describe(documented[i]) : "nothing") +
                            ", the schema " +
                            (i < expected.size() ? describe(expected[i]) : "nothing"));
        }
    };
    [&]<typename... Ms>(std::variant<Ms...>*) {
        (check(static_cast<Ms*>(nullptr)), ...);
    }(static_cast<Message*>(nullptr));
    for (const auto& [type, of_type] : tables) {
        if (of_type.size() > forms[type]) {
            found.push_back("the document has a field table for '" + type +
                            "' that no message of the schema matches");
        }
    }

    // The socket table: "| tasks | ... | `task` |"; control lists both directions, "... to the
    // sink; ... to the ventilator".
    std::map<std::string, std::set<std::string>> carried;
    std::istringstream lines(markdown);
    for (std::string line; std::getline(lines, line);) {
        if (!line.starts_with("| tasks |") && !line.starts_with("| results |") &&
            !line.starts_with("| control |") && !line.starts_with("| listen |")) {
            continue;
        }
        const std::vector<std::string> row = cells(line);
        const std::string& carries = row.size() > 4 ? row[4] : "";
        if (row[0] == "control" || row[0] == "listen") {
            const auto semicolon = carries.find(';');
            const bool control = row[0] == "control";
            for (auto& word : backticked(carries.substr(0, semicolon))) {
                carried[control ? "control to the sink" : "listen to the head"].insert(word);
            }
            if (semicolon != std::string::npos) {
                for (auto& word : backticked(carries.substr(semicolon))) {
                    carried[control ? "control to the ventilator" : "listen to the producer"]
                        .insert(word);
                }
            }
        } else {
            for (auto& word : backticked(carries)) carried[row[0]].insert(word);
        }
    }
    const std::map<std::string, std::set<std::string>> sets = {
        {"tasks", type_names<TasksMessage>()},
        {"results", type_names<ResultsMessage>()},
        {"control to the sink", type_names<ToSinkControl>()},
        {"control to the ventilator", type_names<ToVentilatorControl>()},
        {"listen to the head", type_names<ToHead>()},
        {"listen to the producer", type_names<ToProducer>()},
    };
    for (const auto& [socket, names] : sets) {
        if (carried[socket] != names) {
            found.push_back("the " + socket + " socket carries " + join(names) +
                            "; the document says " + join(carried[socket]));
        }
    }
    return found;
}

const std::string& protocol_md() {
    static const std::string text = read_file(TASKPIPE_PROTOCOL_MD);
    return text;
}

std::string listed(const std::vector<std::string>& lines) {
    std::string out;
    for (const auto& line : lines) out += line + "\n";
    return out;
}

TEST(ProtocolDoc, FieldTablesAndSocketsMatchTheSchema) {
    ASSERT_FALSE(protocol_md().empty()) << "cannot read " << TASKPIPE_PROTOCOL_MD;
    const std::vector<std::string> found = differences(protocol_md());
    EXPECT_TRUE(found.empty()) << listed(found);
}

// The check itself: every field row of the document is one that it would miss.
TEST(ProtocolDoc, RemovingAnyFieldRowIsNoticed) {
    const std::string& text = protocol_md();
    int rows = 0;
    for (std::size_t at = text.find("\n| `"); at != std::string::npos;
         at = text.find("\n| `", at + 1)) {
        const std::size_t end = text.find('\n', at + 1);
        const std::string row = text.substr(at + 1, end - at - 1);
        std::string without = text;
        without.erase(at, end - at);
        SCOPED_TRACE(row);
        EXPECT_FALSE(differences(without).empty());
        ++rows;
    }
    EXPECT_GT(rows, 50);  // the field rows of the fifteen messages
}

TEST(ProtocolDoc, AWrongDefaultTypeOrRequiredFlagIsNoticed) {
    const std::string& text = protocol_md();
    const std::vector<std::pair<std::string, std::string>> edits = {
        {"| `attempt` | uint | default 1 |", "| `attempt` | uint | default 0 |"},
        {"| `pid` | uint | required |", "| `pid` | uint | default 0 |"},
        {"| `draining` | bool | default false |", "| `draining` | uint | default false |"},
        {"| `input` | bytes | optional |", "| `input` | bytes | default empty |"},
        {"| `total` | uint | required |", "| `totals` | uint | required |"},
        {"| `tcp://*:5557` | `task`, `tasks` |", "| `tcp://*:5557` | `task`, `tasks`, `result` |"},
        {"| `tasks` | array of maps | required |", "| `tasks` | array of uint | required |"},
    };
    for (const auto& [from, to] : edits) {
        SCOPED_TRACE(to);
        const auto at = text.find(from);
        ASSERT_NE(at, std::string::npos) << from;
        std::string edited = text;
        edited.replace(at, from.size(), to);
        EXPECT_FALSE(differences(edited).empty());
    }
}

}  // namespace
}  // namespace taskpipe

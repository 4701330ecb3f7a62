#include "command.hpp"

#include <algorithm>
#include <array>
#include <stdexcept>

namespace taskpipe {

namespace {

enum class Part { payload, without_extension, base_name, dir_name, base_without_extension, id };

struct Replacement {
    std::string_view text;
    Part part;
};

// Longest first where one is a prefix of another ("{//}" before "{/}").
constexpr std::array kReplacements{
    Replacement{"{}", Part::payload},    Replacement{"{.}", Part::without_extension},
    Replacement{"{//}", Part::dir_name}, Replacement{"{/.}", Part::base_without_extension},
    Replacement{"{/}", Part::base_name}, Replacement{"{#}", Part::id},
};

// The replacement string at the start of `text`, if any.
const Replacement* replacement_at(std::string_view text) {
    for (const Replacement& r : kReplacements) {
        if (text.starts_with(r.text)) return &r;
    }
    return nullptr;
}

bool has_replacement(std::string_view arg) {
    for (std::size_t at = arg.find('{'); at != std::string_view::npos; at = arg.find('{', at + 1)) {
        if (replacement_at(arg.substr(at))) return true;
    }
    return false;
}

std::string value_of(Part part, std::string_view payload, std::uint64_t task_id) {
    switch (part) {
        case Part::payload:
            return std::string(payload);
        case Part::without_extension:
            return without_extension(payload);
        case Part::base_name:
            return base_name(payload);
        case Part::dir_name:
            return dir_name(payload);
        case Part::base_without_extension:
            return without_extension(base_name(payload));
        case Part::id:
            return std::to_string(task_id);
    }
    return {};
}

// A value that starts an argument and would be read as an option gets "./" in front.
std::string guarded(std::string value, bool file_names) {
    if (file_names && value.starts_with('-')) value.insert(0, "./");
    return value;
}

std::string substitute(std::string_view arg, std::string_view payload, std::uint64_t task_id,
                       bool file_names) {
    std::string out;
    std::size_t from = 0;
    for (std::size_t at = arg.find('{'); at != std::string_view::npos; at = arg.find('{', at)) {
        const Replacement* r = replacement_at(arg.substr(at));
        if (!r) {
            ++at;
            continue;
        }
        out.append(arg, from, at - from);
        out += guarded(value_of(r->part, payload, task_id), file_names && at == 0);
        at += r->text.size();
        from = at;
    }
    out.append(arg, from);
    return out;
}

void check_payload(std::string_view payload) {
    if (payload.find('\0') != std::string_view::npos) {
        throw std::invalid_argument("the payload holds a NUL byte, which no argument can hold");
    }
}

}  // namespace

std::string without_extension(std::string_view path) {
    const auto dot = path.rfind('.');
    const auto slash = path.rfind('/');
    if (dot == std::string_view::npos || (slash != std::string_view::npos && dot < slash)) {
        return std::string(path);
    }
    return std::string(path.substr(0, dot));
}

std::string base_name(std::string_view path) {
    const auto slash = path.rfind('/');
    return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

// dirname(1): trailing slashes go, then the last component, then the slashes before it.
std::string dir_name(std::string_view path) {
    const auto strip_slashes = [](std::string_view& s) {
        while (!s.empty() && s.back() == '/') s.remove_suffix(1);
    };
    if (!path.empty() && path.find_first_not_of('/') == std::string_view::npos) return "/";
    strip_slashes(path);
    const auto slash = path.rfind('/');
    if (slash == std::string_view::npos) return ".";
    path = path.substr(0, slash);
    strip_slashes(path);
    return path.empty() ? "/" : std::string(path);
}

std::vector<std::string> build_argv(const CommandHandler& handler, std::string_view payload,
                                    std::uint64_t task_id) {
    check_payload(payload);
    std::vector<std::string> argv;
    argv.reserve(handler.argv.size() + 1);
    bool substituted = false;
    for (const std::string& arg : handler.argv) {
        if (has_replacement(arg)) {
            argv.push_back(substitute(arg, payload, task_id, handler.file_names));
            substituted = true;
        } else {
            argv.push_back(arg);
        }
    }
    if (!substituted) argv.push_back(guarded(std::string(payload), handler.file_names));
    return argv;
}

std::vector<std::string> build_argv(const ShellHandler& handler, std::string_view payload,
                                    std::uint64_t /*task_id*/) {
    check_payload(payload);
    return {"/bin/sh", "-c", handler.script, "sh", std::string(payload)};
}

std::optional<std::string> payload_as_code_warning(const CommandHandler& handler) {
    struct Interpreter {
        std::string_view name;
        char code_flag;  // the option whose argument is program text
    };
    constexpr std::array kInterpreters{
        Interpreter{"sh", 'c'},   Interpreter{"bash", 'c'},   Interpreter{"dash", 'c'},
        Interpreter{"zsh", 'c'},  Interpreter{"ksh", 'c'},    Interpreter{"mksh", 'c'},
        Interpreter{"fish", 'c'}, Interpreter{"python", 'c'}, Interpreter{"python3", 'c'},
        Interpreter{"perl", 'e'}, Interpreter{"ruby", 'e'},   Interpreter{"node", 'e'},
    };
    const std::vector<std::string>& argv = handler.argv;
    // The interpreter may come after a wrapper (env, nice, timeout 60, sudo -u x).
    for (std::size_t at = 0; at < argv.size(); ++at) {
        const std::string program = base_name(argv[at]);
        const auto interpreter = std::find_if(kInterpreters.begin(), kInterpreters.end(),
                                              [&](const auto& i) { return i.name == program; });
        if (interpreter == kInterpreters.end()) continue;
        // The program text follows the first short-option cluster naming the flag ("-c",
        // "-ec", "-ne").
        for (std::size_t i = at + 1; i + 1 < argv.size(); ++i) {
            const std::string& arg = argv[i];
            if (arg.size() < 2 || arg[0] != '-') break;
            if (arg[1] == '-' || arg.find(interpreter->code_flag) == std::string::npos) continue;
            if (!has_replacement(argv[i + 1])) return std::nullopt;
            return "'" + std::string(interpreter->name) + " " + arg +
                   "' gets a replacement string inside its program text: a payload such as "
                   "'; rm -rf ~' would run as code. Pass the payload as an argument instead: "
                   "--shell 'SCRIPT' gives it to SCRIPT as \"$1\"";
        }
        return std::nullopt;
    }
    return std::nullopt;
}

}  // namespace taskpipe

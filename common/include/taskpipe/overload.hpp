// Overload: one callable made of several lambdas, for std::visit over a variant of messages.
//
//     std::visit(Overload{[&](const Result& r) { ... }, [&](const Heartbeat& h) { ... }}, message);
//
// Without a catch-all lambda (auto), an alternative that has no handler does not compile.
#pragma once

namespace taskpipe {

template <typename... Handlers>
struct Overload : Handlers... {
    using Handlers::operator()...;
};
template <typename... Handlers>
Overload(Handlers...) -> Overload<Handlers...>;

}  // namespace taskpipe

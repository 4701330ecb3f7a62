#include "taskpipe/shutdown.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <system_error>

namespace taskpipe {

namespace {

int g_pipe[2] = {-1, -1};
volatile std::sig_atomic_t g_signal = 0;
std::atomic<ShutdownSignal::ImmediateExitHook> g_hook{nullptr};

extern "C" void on_shutdown_signal(int signo) {
    if (g_signal != 0) {
        if (auto hook = g_hook.load()) hook();
        _exit(128 + signo);
    }
    g_signal = signo;
    const char byte = 1;
    const int saved = errno;
    [[maybe_unused]] auto n = write(g_pipe[1], &byte, 1);
    errno = saved;
}

}  // namespace

ShutdownSignal& ShutdownSignal::install() {
    static ShutdownSignal instance = [] {
        if (pipe2(g_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
            throw std::system_error(errno, std::generic_category(), "pipe2");
        }
        struct sigaction action {};
        action.sa_handler = on_shutdown_signal;
        sigemptyset(&action.sa_mask);
        action.sa_flags = SA_RESTART;
        sigaction(SIGINT, &action, nullptr);
        sigaction(SIGTERM, &action, nullptr);
        std::signal(SIGPIPE, SIG_IGN);
        return ShutdownSignal();
    }();
    return instance;
}

int ShutdownSignal::fd() const { return g_pipe[0]; }
bool ShutdownSignal::requested() const { return g_signal != 0; }
int ShutdownSignal::signal_number() const { return g_signal; }
void ShutdownSignal::set_immediate_exit_hook(ImmediateExitHook hook) { g_hook.store(hook); }

}  // namespace taskpipe

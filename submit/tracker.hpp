// The tasks of one `taskpipe submit` command, from request to outcome: which requests to send
// and when, what each answer means, and the tasks in the order they were given, once each is
// complete. The producer's side of the protocol (docs/protocol.md, "Service mode") without I/O
// or clock, after the sans-I/O protocol libraries: the Producer feeds it the connection's ups
// and downs, the head's messages and the time, sends what it asks for and prints what it hands
// back. Not thread-safe.
//
// Requests are pipelined: up to `window` are outstanding at once, and answers are matched by
// `req`. A waited task is finished by the `done` the head pushes to this connection, or by a
// long-polled `status` (`wait_ms`): at once for a task this connection was not told about, after
// `push_grace` for one it was (should a push be lost), and again after every reconnection.
// While the connection is down nothing is sent; when it comes back, the requests that are safe
// to repeat (status, cancel, a submit with a key) are sent again. A submit without a key that
// was sent and not answered gives up: the head may or may not have taken it. A head that is
// connected but does not answer (stopped, hung) is given up on as one that is away: a request
// unanswered for `patience` (a long poll: its wait, then `patience`) ends the command.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "taskpipe/message.hpp"

namespace taskpipe {

class Tracker {
  public:
    using Clock = std::chrono::steady_clock;
    using TimePoint = Clock::time_point;

    struct Settings {
        bool wait = false;  // follow each task until it finishes
        // For every submit: run no earlier than this (0: at once).
        std::uint64_t delay_ms = 0;
        std::uint64_t not_before_us = 0;
        std::optional<TimePoint> deadline{};  // --timeout: then every unfinished task gives up
        std::size_t window = 1000;            // requests (not polls) outstanding at most
        std::size_t max_held = 10000;         // tasks held, unfinished or waiting to be printed
        std::size_t max_polls = 1000;         // long polls outstanding at most
        Clock::duration push_grace = std::chrono::seconds(2);
        Clock::duration long_poll = std::chrono::seconds(30);  // a poll's wait_ms
        Clock::duration poll_backoff = std::chrono::seconds(1);
        // The head away, or a request unanswered, at most this long.
        Clock::duration patience = std::chrono::seconds(30);
    };

    enum class Ask { submit, status, cancel };

    // One task of the command and what became of it.
    struct Task {
        Ask ask = Ask::submit;
        std::uint64_t number = 0;  // its place in the command, from 1: the order of printing
        std::string payload;       // submit: kept until accepted (a keyed submit is repeatable)
        std::optional<std::string> key;
        std::uint64_t id = 0;    // given (status, cancel) or issued (submit); 0: not known
        std::uint64_t head = 0;  // the head instance that issued `id` (0: not known)
        bool created = false;    // submit: a new task (false: its key named an existing one)
        std::optional<TaskReport> report;  // the head's last word on it (submit: state only)
        std::optional<Error> refused;      // the head refused the request
        std::string gave_up;               // why the command stopped waiting for it
    };

    explicit Tracker(Settings settings);

    void add_submit(std::string payload, std::optional<std::string> key);
    void add_status(std::uint64_t id);
    void add_status(std::string key);
    void add_cancel(std::uint64_t id);
    // Whether to add more tasks now: fewer than `window` requests to send or unanswered, fewer
    // than `max_held` tasks held, and not stopped.
    bool wants_more() const;

    // The connection to the head is up (its handshake succeeded) or down.
    void connected(TimePoint now);
    void disconnected(TimePoint now, const std::string& reason);

    void received(ToProducer message, TimePoint now);
    // Polls that are due, the deadline, the patience with a head that is away or silent.
    void tick(TimePoint now);
    // Every unfinished task gives up, for `reason` (interrupted); nothing more is sent.
    void stop(const std::string& reason);

    // The next request to send, while connected; request_sent() once it is on its way.
    const ToHead* next_request() const;
    void request_sent();

    // The next task, in the order they were added, once it is complete (and everything before
    // it has been taken).
    std::optional<Task> take_complete();

    // Every task added has been taken.
    bool idle() const { return tasks_.empty(); }
    // It gave up (stop(), the deadline, or the head stayed away): add no more tasks.
    bool stopped() const { return stopped_; }
    // When tick() has something to do next; nullopt: only a message or a connection change.
    std::optional<TimePoint> next_wakeup() const;
    // Answers that matched no request (late, or after the connection was replaced).
    std::uint64_t stale_answers() const { return stale_; }

  private:
    enum class Phase {
        queued,    // its request is to be sent
        asked,     // its request is in the outbox or sent, unanswered
        waiting,   // waiting for it to finish: a `done`, or a poll's answer
        complete,  // its outcome is known
    };
    struct Entry {
        Task task;
        Phase phase = Phase::queued;
        std::uint64_t req = 0;             // asked: the request's number
        std::uint64_t poll_req = 0;        // waiting: the outstanding poll's, 0: none
        std::optional<TimePoint> poll_at;  // waiting, no poll outstanding: when to poll
    };
    struct Request {
        std::uint64_t number;  // the task
        bool poll;
        bool sent = false;
        TimePoint sent_at{};
        Clock::duration wait{};
        std::multimap<TimePoint, std::uint64_t>::iterator due;  // in answers_due_
    };
    struct Outgoing {
        std::uint64_t req;
        ToHead message;
    };

    std::uint64_t add(Task task, Phase phase);
    Entry* find(std::uint64_t number);
    void pump(TimePoint now);
    void ask(Entry& entry, TimePoint now);
    void expect_answer(std::uint64_t req, Request request);
    void forget_request(std::unordered_map<std::uint64_t, Request>::iterator it);
    void poll(Entry& entry, TimePoint now);
    void wait_for(Entry& entry, TimePoint poll_at);
    void schedule_poll(Entry& entry, TimePoint at);
    void complete(Entry& entry);
    void give_up(Entry& entry, const std::string& reason);
    void give_up_all(const std::string& reason);
    void answer(Entry& entry, const Request& request, ToProducer& message, TimePoint now);
    void report(Entry& entry, TaskReport report, TimePoint now, const Request* poll);
    bool other_head(const Entry& entry, std::uint64_t head) const;
    std::uint64_t next_req() { return ++last_req_; }

    Settings settings_;
    std::deque<Entry> tasks_;
    std::uint64_t first_number_ = 1;  // the number of tasks_.front()
    std::uint64_t added_ = 0;
    std::set<std::uint64_t> to_ask_;  // queued tasks, in order
    std::deque<Outgoing> outbox_;
    std::unordered_map<std::uint64_t, Request> requests_;  // by req
    // When each request in requests_ should have been answered: -> req.
    std::multimap<TimePoint, std::uint64_t> answers_due_;
    std::unordered_map<std::uint64_t, Request>::iterator unused_;          // by req
    std::unordered_multimap<std::uint64_t, std::uint64_t> waiting_by_id_;  // id -> number
    std::multimap<TimePoint, std::uint64_t> polls_due_;                    // -> number
    std::size_t asked_ = 0;                                                // tasks in Phase::asked
    std::size_t polls_outstanding_ = 0;
    std::uint64_t last_req_ = 0;
    bool connected_ = false;
    std::optional<TimePoint> down_since_;
    std::string down_reason_;
    bool stopped_ = false;
    std::uint64_t stale_ = 0;
};

// Whether a task in `state` has finished (ok, failed, error, timeout, lost, cancelled).
bool is_final_state(std::string_view state);

}  // namespace taskpipe

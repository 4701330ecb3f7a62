#include "sink.hpp"

#include <cstdio>
#include <random>
#include <system_error>
#include <unordered_set>

#include "prometheus.hpp"
#include "summary.hpp"
#include "taskpipe/log.hpp"
#include "taskpipe/message_io.hpp"
#include "taskpipe/overload.hpp"
#include "taskpipe/shutdown.hpp"
#include "taskpipe/sockets.hpp"
#include "taskpipe/text.hpp"
#include "taskpipe/wall_clock.hpp"

namespace taskpipe {

namespace {

constexpr std::size_t kStderrLinesShown = 5;  // of a failed task, the last lines
constexpr std::size_t kShownLineBytes = 200;  // each cut to this
constexpr std::size_t kEarlyBytesLimit = 64u << 20;
constexpr int kReceiveBurst = 4096;  // results taken before the control socket is looked at
// The sink tells the ventilator it is alive at least this often (an empty Alive), so that a
// silent sink is told apart from dead workers.
constexpr auto kSinkHeartbeat = std::chrono::seconds(1);
// A worker not heard from for this long no longer counts towards the live capacity.
constexpr auto kWorkerSilence = std::chrono::seconds(5);

WorkerTable::Settings worker_table_settings(const SinkOptions& options) {
    return {.silence = kWorkerSilence, .max_workers = options.max_workers};
}
// A Hello for the running batch that does not name this sink instance moves the conversation to
// its connection only once the batch's ventilator has been silent this long (it sends Progress
// every second): a live ventilator's batch cannot be taken away from it.
constexpr auto kTakeoverSilence = std::chrono::seconds(3);
// See Ventilator: a loop iteration this much longer than its poll timeout means a pause.
constexpr auto kPauseThreshold = std::chrono::seconds(1);
// What of a result an Outcome carries: the head keeps at most 512 KiB of stdout (--max-output),
// and the control socket takes frames of at most 1 MiB.
constexpr std::size_t kOutcomeOutputBytes = 512 * 1024;
constexpr std::size_t kOutcomeErrorBytes = 64 * 1024;

std::uint64_t random_instance() {
    std::random_device device;
    std::uint64_t id = 0;
    while (id == 0) id = (std::uint64_t{device()} << 32) ^ device();
    return id;
}

std::string seconds(std::chrono::steady_clock::duration d) {
    return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(d).count()) + " s";
}

SocketOptions result_socket_options(const std::optional<CurveKeys>& curve) {
    SocketOptions o;
    if (curve) o.curve = curve_server_socket(*curve, "results");
    o.name = "results";
    o.linger_ms = 0;  // nothing is sent on it
    o.receive_hwm = 10000;
    o.max_message_size = static_cast<std::int64_t>(kMaxResultFrame);
    return o;
}

SocketOptions control_socket_options(const std::optional<CurveKeys>& curve) {
    SocketOptions o;
    if (curve) o.curve = curve_server_socket(*curve, "control");
    o.name = "control";
    o.linger_ms = 1000;  // lets the last acknowledgements leave; the ventilator's Bye says so
    // A service's head hears of every result (Outcome): a burst of results must not fill this
    // queue, for a ROUTER drops what does not fit. With the default 1,000, 4 producers
    // submitting 50,000 tasks had 49 to 459 outcomes dropped; each task waited for the
    // liveness timeout, and its later results were dropped as duplicates of the held one.
    o.send_hwm = 100000;
    o.max_message_size = 1 << 20;
    return o;
}

std::string describe_failure(const Result& r) {
    std::string text = "task " + std::to_string(r.id) + " " + to_string(r.status);
    if (r.status == Status::lost) {
        return text + ": no result after " + std::to_string(r.attempt) + " attempts";
    }
    if (r.exit_code) text += " (exit code " + std::to_string(*r.exit_code) + ")";
    if (r.signal) text += " (signal " + std::to_string(*r.signal) + ")";
    if (!r.host.empty()) text += " on " + worker_name(r.host, r.pid);
    if (r.input) text += ", input: " + printable(*r.input, kShownLineBytes);
    return text;
}

// Workers may send results; only the server key pair, which the ventilator shares, may use the
// control socket (docs/security.md).
ZapDomains allow_lists(const CurveKeys& keys) {
    return {{"results", keys.allowed}, {"control", {keys.own.public_key}}};
}

ResultWriter::Format output_format(const SinkOptions& o) {
    if (o.jsonl) return ResultWriter::Format::jsonl;
    return o.tag ? ResultWriter::Format::tagged : ResultWriter::Format::raw;
}

}  // namespace

Sink::Sink(const SinkOptions& options, int output_fd)
    : options_(options),
      curve_(load_curve_keys(options.curve, kSinkCurveRoles)),
      connection_log_(context_, {"results", "control"}),
      zap_(curve_ ? std::make_unique<ZapHandler>(context_, allow_lists(*curve_)) : nullptr),
      results_(bind_socket(context_, zmq::socket_type::pull, result_socket_options(curve_),
                           options.bind)),
      control_(bind_socket(context_, zmq::socket_type::router, control_socket_options(curve_),
                           options.control)),
      writer_(ResultWriter::make(output_format(options), output_fd)),
      progress_(ProgressReport::choose(options.quiet), options.progress_interval),
      joblog_(options.joblog.empty() ? nullptr : std::make_unique<Joblog>(options.joblog)),
      instance_(random_instance()),
      stats_(worker_table_settings(options)) {
    // A --stats path that cannot be written is found now, not after the whole batch has run.
    if (!options.stats_file.empty()) check_writable_file(options.stats_file);
    if (!options.results_dir.empty()) results_dir_.emplace(options.results_dir);
    // A Welcome for a ventilator that went away must not block the sink.
    control_.set(zmq::sockopt::router_mandatory, false);
    if (curve_) {
        log_info("CURVE on: " + std::to_string(curve_->allowed.size()) +
                 " public keys may send results; only the server key pair may use control");
    }
    // With port *, the port is only known now; tests and scripts read it from these lines.
    if (options.bind.ends_with(":*")) log_info("results on " + last_endpoint(results_));
    if (options.control.ends_with(":*")) log_info("control on " + last_endpoint(control_));
    if (options.metrics) {
        metrics_ = std::make_unique<MetricsServer>(
            *options.metrics, [this] { return render_prometheus(stats_.snapshot()); });
        log_info("metrics on " + metrics_->url());
    }
}

std::string Sink::results_endpoint() { return last_endpoint(results_); }
std::string Sink::control_endpoint() { return last_endpoint(control_); }

void Sink::count_malformed(const std::string& where, const std::string& why) {
    malformed_.count("dropped a malformed message on the " + where + " socket: " + why);
    stats_.malformed(malformed_.total());
}

void Sink::send_to_ventilator(const ToVentilatorControl& message) {
    if (ventilator_.empty()) return;
    next_sink_beat_ = Clock::now() + kSinkHeartbeat;
    if (const auto* alive = std::get_if<Alive>(&message)) {
        capacity_told_ = alive->capacity;
        group_max_told_ = alive->group_max;
    }
    if (const auto* welcome = std::get_if<Welcome>(&message)) {
        capacity_told_ = welcome->capacity;
        group_max_told_ = welcome->group_max;
    }
    (void)send_message<ToVentilatorControl>(control_, ventilator_, encoder_, message);
}

void Sink::flush_output() {
    advance_ordered_output();
    writer_->flush();
    if (joblog_) joblog_->flush();  // after the output: a task in the joblog has its output out
}

void Sink::flush_acks() {
    // A result is acknowledged only once its output has reached the kernel (so it survives a
    // crash of the sink) and, with --keep-order, the output has moved past it: the ventilator's
    // reorder window counts from the acknowledged ids.
    flush_output();
    if (pending_ack_.ids.empty()) return;
    pending_ack_.batch = batch_;
    send_to_ventilator(pending_ack_);
    pending_ack_.ids.clear();
    pending_ack_.failed.clear();
}

void Sink::on_result(Result& r) {
    if (batch_ == 0) {
        // Counted with a fixed overhead, so that a flood of empty results is bounded too.
        const std::size_t size = sizeof(Result) + r.out.size() + r.err.size() + r.host.size() +
                                 (r.input ? r.input->size() : 0);
        if (early_bytes_ + size <= kEarlyBytesLimit) {
            early_bytes_ += size;
            early_.push_back(std::move(r));
        }  // else dropped: the ventilator re-sends the task
        return;
    }
    if (r.batch != batch_) {
        stats_.foreign();
        return;
    }
    if (options_.serve) {
        hold_for_the_head(r);
        return;
    }
    if (total_ && r.id > *total_) {
        count_malformed("results", "task id " + std::to_string(r.id) + " is beyond the batch");
        return;
    }
    if (options_.keep_order && r.id >= next_out_ + options_.reorder_window) {
        // Never from a ventilator that keeps the window; not acknowledged, so sent again later.
        count_malformed("results",
                        "task id " + std::to_string(r.id) + " is beyond the reorder window");
        return;
    }
    pending_ack_.ids.push_back(r.id);
    const bool first = done_.insert(r.id);
    stats_.result(r, first, unix_micros());
    if (first) {
        if (r.status != Status::ok) pending_ack_.failed.push_back(r.id);
        finish_task(r);
    }
    if (pending_ack_.ids.size() >= kMaxIdsPerMessage) flush_acks();
}

// A service's result: held until the head says whether it is the task's one recorded result
// (Record). The first result for an id is held and reported to the head; a second one while the
// first is held is dropped (the head would drop it too), and the held one reported again.
void Sink::hold_for_the_head(Result& r) {
    if (auto held = held_for_head_.find(r.id); held != held_for_head_.end()) {
        stats_.result(r, /*first=*/false, unix_micros());
        // The head sent the task again: it has not heard of the held result (the Outcome was
        // dropped on the way, or is still queued). It hears again; one more Outcome is harmless.
        send_to_ventilator(outcome_of(held->second));
        return;
    }
    const std::size_t size = sizeof(Result) + r.out.size() + r.err.size() + r.host.size() +
                             (r.input ? r.input->size() : 0);
    if (held_bytes_ + size > kEarlyBytesLimit) {
        // The head sends the task again after its liveness timeout.
        count_malformed("results", "more results held for the head than the sink keeps");
        return;
    }
    held_bytes_ += size;
    send_to_ventilator(outcome_of(r));
    held_for_head_.emplace(r.id, std::move(r));
}

Outcome Sink::outcome_of(const Result& r) {
    Outcome o{r.batch, r.id, r.attempt, r.status, r.exit_code,  r.signal,     {},
              false,   {},   r.host,    r.pid,    r.started_us, r.duration_us};
    // The control socket takes frames of at most 1 MiB: the head keeps less anyway.
    o.out = r.out.substr(0, kOutcomeOutputBytes);
    o.out_truncated = r.out_truncated || r.out.size() > kOutcomeOutputBytes;
    o.err = r.err.substr(r.err.size() > kOutcomeErrorBytes ? r.err.size() - kOutcomeErrorBytes : 0);
    return o;
}

// The head's verdict on the results held for it.
void Sink::on_record(const Record& record) {
    auto take = [&](std::uint64_t id) -> std::optional<Result> {
        auto it = held_for_head_.find(id);
        if (it == held_for_head_.end()) return std::nullopt;
        Result r = std::move(it->second);
        held_for_head_.erase(it);
        held_bytes_ -= std::min(held_bytes_, sizeof(Result) + r.out.size() + r.err.size() +
                                                 r.host.size() + (r.input ? r.input->size() : 0));
        return r;
    };
    for (std::uint64_t id : record.ids) {
        if (std::optional<Result> r = take(id)) {
            stats_.result(*r, /*first=*/true, unix_micros());
            finish_task(*r);
        }
    }
    for (std::uint64_t id : record.drop) {
        if (std::optional<Result> r = take(id)) stats_.result(*r, /*first=*/false, unix_micros());
    }
}

// A task's final outcome (its first result, or lost): reported at once, written out once.
void Sink::finish_task(Result& r) {
    if (r.status != Status::ok) report_failure(r);
    if (!options_.keep_order) {
        emit(r);
        return;
    }
    held_.emplace(r.id, std::move(r));
    advance_ordered_output();
}

void Sink::report_failure(const Result& r) {
    ++failures_reported_;
    if (failures_reported_ > options_.show_failures) {
        if (failures_reported_ == options_.show_failures + 1) {
            log_warning(
                "more tasks failed; they are not logged one by one (see --jsonl, "
                "--joblog or --results for each one)");
        }
        return;
    }
    log_warning(describe_failure(r));
    for (const std::string& line : stderr_tail(r.err, kStderrLinesShown, kShownLineBytes))
        log_warning("  stderr: " + line);
}

void Sink::emit(const Result& r) {
    // The joblog line first: it reserves its room on disk, so that a full disk stops the sink
    // before this output is written rather than after (see Joblog).
    if (joblog_) joblog_->append(r);
    ++written_;
    writer_->write(r);
    if (results_dir_) results_dir_->write(r);
}

void Sink::advance_ordered_output() {
    if (!options_.keep_order) return;
    // Ids below next_out_ are written; an id in done_ without a held result was skipped.
    while (done_.contains(next_out_)) {
        if (auto it = held_.find(next_out_); it != held_.end()) {
            emit(it->second);
            held_.erase(it);
        }
        ++next_out_;
    }
}

void Sink::on_lost(const Lost& lost) {
    if (lost.batch != batch_ || lost.id == 0 || (total_ && lost.id > *total_)) return;
    if (options_.serve) {  // the head recorded it: written once, not acknowledged
        stats_.lost();
        Result r;
        r.batch = lost.batch;
        r.id = lost.id;
        r.attempt = lost.attempts;
        r.status = Status::lost;
        finish_task(r);
        return;
    }
    // Acknowledged like a failed result, so that the ventilator counts it lost only once the
    // sink has recorded it so (a `lost` sent again after a reconnection gets the same answer);
    // one the sink already has a result for is not lost, and is acknowledged as that result.
    pending_ack_.ids.push_back(lost.id);
    if (!done_.insert(lost.id)) {
        if (lost_ids_.contains(lost.id)) pending_ack_.failed.push_back(lost.id);
        return;
    }
    lost_ids_.insert(lost.id);
    pending_ack_.failed.push_back(lost.id);
    stats_.lost();
    Result r;
    r.batch = lost.batch;
    r.id = lost.id;
    r.attempt = lost.attempts;
    r.status = Status::lost;
    finish_task(r);
}

// Tasks an earlier run finished (ventilator --resume): done, with no output and no joblog line.
void Sink::on_skip(const Skip& skip) {
    if (skip.batch != batch_) return;
    const std::unordered_set<std::uint64_t> failed(skip.failed.begin(), skip.failed.end());
    for (std::uint64_t id : skip.ids) {
        if (id == 0 || (total_ && id > *total_)) continue;
        pending_ack_.ids.push_back(id);
        if (done_.insert(id)) stats_.skipped(1, failed.contains(id) ? 1 : 0);
        if (pending_ack_.ids.size() >= kMaxIdsPerMessage) flush_acks();
    }
}

std::uint64_t Sink::live_capacity() { return stats_.live_capacity(); }

std::uint64_t Sink::live_group_max() { return stats_.live_group_max(); }

void Sink::on_heartbeat(const Heartbeat& beat) {
    // A worker that does not say its capacity counts for its concurrency (at least 1).
    const std::uint32_t capacity = beat.draining       ? 0
                                   : beat.capacity > 0 ? beat.capacity
                                                       : std::max(beat.concurrency, 1u);
    (void)stats_.heartbeat(worker_name(beat.host, beat.pid), capacity, beat.group_max);
    if (batch_ == 0 || ventilator_.empty()) return;
    Alive alive{batch_, {}, live_capacity(), instance_, std::nullopt, live_group_max()};
    for (const TaskRef& ref : beat.tasks) {
        if (ref.batch == batch_) alive.ids.push_back(ref.id);
    }
    if (beat.running) {
        alive.running.emplace();
        for (const TaskRef& ref : *beat.running) {
            if (ref.batch == batch_) alive.running->push_back(ref.id);
        }
    }
    // A heartbeat that names no task of the batch and changes nothing is not passed on (the
    // sink's own heartbeat tells the capacity every second): a flood of them stays here.
    if (alive.ids.empty() && alive.capacity == capacity_told_ &&
        alive.group_max == group_max_told_) {
        return;
    }
    send_to_ventilator(alive);
}

void Sink::on_release(const WorkerRelease& release) {
    if (batch_ == 0) return;
    SinkRelease forward;
    forward.batch = batch_;
    for (const TaskRef& ref : release.tasks) {
        if (ref.batch != batch_) continue;
        if (!done_.contains(ref.id)) {
            forward.ids.push_back(ref.id);
        } else {
            // The ventilator sent a task this sink has a result for: it missed the ack (sent
            // into a connection that died), so it gets another one.
            pending_ack_.ids.push_back(ref.id);
            if (pending_ack_.ids.size() >= kMaxIdsPerMessage) flush_acks();
        }
    }
    if (!forward.ids.empty()) send_to_ventilator(forward);
}

void Sink::receive_results() {
    for (int i = 0; i < kReceiveBurst; ++i) {
        std::optional<Received<ResultsMessage>> received = recv_message<ResultsMessage>(results_);
        if (!received) break;
        if (!received->message) {
            count_malformed("results", received->error);
            continue;
        }
        std::visit(Overload{[&](Result& result) { on_result(result); },
                            [&](ResultGroup& group) {
                                for (Result& result : group.results.items) on_result(result);
                                for (const std::string& why : group.results.refusals) {
                                    count_malformed("results", why);
                                }
                            },
                            [&](const Heartbeat& beat) { on_heartbeat(beat); },
                            [&](const WorkerRelease& release) { on_release(release); }},
                   *received->message);
    }
}

void Sink::on_hello(const std::string& peer, const std::string& from, const Hello& hello,
                    Clock::time_point now) {
    if (hello.batch == 0) {
        count_malformed("control", "hello for batch 0 (batch ids are not 0)");
        return;
    }
    auto reject = [&](const std::string& reason) {
        const std::string saved = std::exchange(ventilator_, peer);
        send_to_ventilator(Reject{hello.batch, reason});
        ventilator_ = saved;
    };
    if (hello.serve != options_.serve) {
        return reject(options_.serve ? "this sink serves a service (sink --serve), not a batch"
                                     : "this sink takes a batch; start it with --serve to serve "
                                       "a service");
    }
    const bool silent = now - last_heard_from_ventilator_ >= kTakeoverSilence;
    bool first = batch_ == 0;
    if (!first && hello.batch != batch_) {
        // A service's head restarted without its store: a new batch, once the old one is silent.
        if (!options_.serve || !silent) {
            return reject(options_.serve ? "this sink serves another service, which is connected"
                                         : "the sink is busy with another batch");
        }
        log_warning("a new service (batch " + std::to_string(hello.batch) + ") replaces batch " +
                    std::to_string(batch_) + ", which has been silent; " +
                    std::to_string(held_for_head_.size()) + " results held for it are dropped");
        held_for_head_.clear();
        held_bytes_ = 0;
        first = true;
    }
    if (!first && peer != ventilator_) {
        // The ventilator reconnected (it names this instance), or its old connection went
        // silent; anything else is a stranger who learnt the batch id.
        const bool known = hello.sink == instance_;
        if (!known && !silent) {
            refused_.count("refused a hello for the running batch" + from +
                           ": the batch's ventilator is connected");
            stats_.refused(refused_.total());
            const std::string saved = std::exchange(ventilator_, peer);
            send_to_ventilator(Reject{hello.batch, "the batch's ventilator is connected"});
            ventilator_ = saved;
            return;
        }
        log_info("the ventilator is back on a new connection" + from);
    }
    batch_ = hello.batch;
    ventilator_ = peer;
    last_heard_from_ventilator_ = now;
    send_to_ventilator(Welcome{batch_, live_capacity(),
                               options_.keep_order ? options_.reorder_window : 0, shows_input(),
                               instance_, options_.serve, live_group_max()});
    // A service's head that restarted may not have recorded these: it says again which count.
    for (const auto& [id, r] : held_for_head_) send_to_ventilator(outcome_of(r));
    if (!first) return;
    stats_.batch_started();
    if (options_.serve) stats_.serving();
    if (hello.sink != 0) log_info("taking over a running batch (the sink was restarted?)");
    std::vector<Result> early = std::move(early_);
    early_.clear();
    early_bytes_ = 0;
    for (Result& r : early) on_result(r);
}

// The tasks the sink before this one recorded: done, with no output and no joblog line here.
void Sink::on_handover(const Handover& h) {
    const std::uint64_t last = total_ ? std::min(h.through, *total_) : h.through;
    std::uint64_t added = done_.insert_through(last);
    for (std::uint64_t id : h.ids) {
        if (id != 0 && (!total_ || id <= *total_) && done_.insert(id)) ++added;
    }
    std::uint64_t failed = 0;
    for (std::uint64_t id : h.failed) {
        if (done_.contains(id) && handed_over_failed_.insert(id).second) ++failed;
    }
    stats_.handed_over(added, failed);
    advance_ordered_output();
}

// The ventilator reconnected and may have missed acknowledgements sent into the connection that
// died: those of its tasks that are done here are acknowledged again.
void Sink::on_pending(const Pending& pending) {
    for (std::uint64_t id : pending.ids) {
        if (id != 0 && done_.contains(id)) pending_ack_.ids.push_back(id);
        if (pending_ack_.ids.size() >= kMaxIdsPerMessage) flush_acks();
    }
}

void Sink::on_control(const std::string& peer, const std::string& from,
                      const ToSinkControl& message, Clock::time_point now) {
    if (const auto* hello = std::get_if<Hello>(&message)) {
        on_hello(peer, from, *hello, now);
        return;
    }
    if (batch_ == 0 || peer != ventilator_) {
        // A ventilator that reconnected may send a few messages before its Hello moves the
        // batch to the new connection; it sends again what matters (Ventilator::resend_reports).
        refused_.count("refused a control message" + from +
                       (batch_ == 0 ? ": no batch has started"
                                    : ": not from the batch's ventilator (a reconnecting "
                                      "ventilator's hello would follow)"));
        stats_.refused(refused_.total());
        return;
    }
    last_heard_from_ventilator_ = now;
    std::visit(Overload{
                   [&](const End& end) {
                       if (end.batch != batch_ || total_) return;
                       total_ = end.total;
                       stats_.total_known(end.total);
                       // Results for ids past the end (forged, or from a confused peer) came before
                       // the total was known; they must not stand in for tasks of the batch.
                       const std::uint64_t beyond = done_.erase_above(end.total);
                       if (beyond > 0) {
                           count_malformed(
                               "results",
                               std::to_string(beyond) + " results had ids beyond the batch's end");
                       }
                   },
                   [&](const Lost& lost) { on_lost(lost); },
                   [&](const Skip& skip) { on_skip(skip); },
                   [&](const Handover& handover) {
                       if (handover.batch == batch_) on_handover(handover);
                   },
                   [&](const Pending& pending) {
                       if (pending.batch == batch_) on_pending(pending);
                   },
                   [&](const Progress& progress) {
                       if (progress.batch == batch_) stats_.progress(progress);
                   },
                   [&](const Bye& bye) {
                       if (bye.batch != batch_) return;
                       bye_ = true;
                       // A service's head that stopped: the next one may take over at once.
                       if (options_.serve) {
                           last_heard_from_ventilator_ = Clock::time_point{};
                           log_info("the service's head stopped; waiting for the next one");
                       }
                   },
                   [](const Hello&) {},  // handled above
                   [&](const Record& record) {
                       if (record.batch == batch_) on_record(record);
                   },
               },
               message);
}

void Sink::receive_control() {
    const auto now = Clock::now();
    while (std::optional<Received<ToSinkControl>> received =
               recv_message<ToSinkControl>(control_, Framing::routed)) {
        if (!received->message) {
            count_malformed("control", received->error);
            continue;
        }
        on_control(received->peer, received->from, *received->message, now);
    }
}

void Sink::log_summary() {
    const StatsSnapshot stats = stats_.snapshot();
    for (const std::string& line : summary_lines(stats, total_.value_or(done_.size()))) {
        log_info(line);
    }
}

void Sink::write_stats_file(bool complete) {
    if (options_.stats_file.empty()) return;
    try {
        write_json_file(options_.stats_file,
                        summary_json(stats_.snapshot(), total_.value_or(done_.size()), complete));
    } catch (const std::system_error& e) {
        log_error(std::string("--stats: ") + e.what());
    }
}

// The loop runs at least every quarter second; a much longer gap means this process was not
// running, and the silence of the ventilator and the workers meanwhile is not theirs.
void Sink::check_pause(Clock::time_point now, Clock::duration expected) {
    const Clock::duration gap = now - last_loop_;
    last_loop_ = now;
    if (gap < expected + kPauseThreshold) return;
    log_warning("this sink did not run for " + seconds(gap) +
                " (stopped, or the machine was suspended)");
    last_heard_from_ventilator_ += gap;
    stats_.paused(gap);
}

// Tells the ventilator that the batch will not complete here, so that it need not wait for the
// give-up timeout. Best effort: the ventilator's own timeout covers a lost Abort.
void Sink::abort(ExitCode status, const std::string& reason) {
    send_to_ventilator(Abort{batch_, static_cast<std::uint32_t>(status), reason});
}

int Sink::run() {
    ShutdownSignal& shutdown = ShutdownSignal::install();
    std::vector<zmq::pollitem_t> items;
    bool finished = false;
    last_loop_ = Clock::now();
    auto timeout = std::chrono::milliseconds(250);
    try {
        while (!shutdown.requested()) {
            const auto now = Clock::now();
            check_pause(now, timeout);
            if (zap_) zap_->check();
            receive_results();
            receive_control();
            flush_acks();
            if (batch_ != 0 && !finished) progress_.update(stats_, now);
            if (batch_ != 0 && Clock::now() >= next_sink_beat_) {
                // The sink's own heartbeat.
                send_to_ventilator(
                    Alive{batch_, {}, live_capacity(), instance_, std::nullopt, live_group_max()});
            }
            if (!finished && complete()) {
                finished = true;
                completed_at_ = Clock::now();
                stats_.batch_finished();
                progress_.finish();
                log_summary();
            }
            if (finished && (bye_ || Clock::now() - completed_at_ >= options_.bye_timeout)) break;
            if (!finished && batch_ != 0 && options_.ventilator_timeout.count() > 0 &&
                now - last_heard_from_ventilator_ >= options_.ventilator_timeout) {
                return give_up(now);
            }
            items = {
                {results_.handle(), 0, ZMQ_POLLIN, 0},
                {control_.handle(), 0, ZMQ_POLLIN, 0},
                {nullptr, shutdown.fd(), ZMQ_POLLIN, 0},
            };
            timeout = std::chrono::milliseconds(finished ? 50 : 250);
            poll(items, timeout);
        }
        if (!finished) return interrupted();
    } catch (const std::system_error& e) {
        // The output, the joblog or --results cannot be written. What is buffered goes out if
        // it can: each joblog line buffered has its room reserved, so output and joblog agree.
        try {
            flush_output();
        } catch (const std::system_error&) {
            // Already failing; the first error is the one reported.
        }
        abort(kExitUsage, e.what());
        throw;
    }
    // Written last: the ventilator's final Progress comes just before its Bye.
    write_stats_file(true);
    const StatsSnapshot stats = stats_.snapshot();
    return stats.any_failed() ? kExitTasksFailed : kExitOk;
}

std::string Sink::written_text() const {
    return std::to_string(written_) + " results written" +
           (total_ ? " of " + std::to_string(*total_) + " tasks"
                   : "; the ventilator had not finished reading its input") +
           (held_.empty()
                ? ""
                : "; " + std::to_string(held_.size()) + " held back for -k were not written");
}

int Sink::interrupted() {
    flush_output();
    if (options_.serve) {
        abort(kExitOk, "the service's sink was stopped");
        stats_.batch_finished();
        progress_.finish();
        log_summary();
        write_stats_file(true);
        log_info("stopped: " + std::to_string(written_) + " results written; " +
                 std::to_string(held_for_head_.size()) +
                 " held for the head are not (their tasks run again)");
        return kExitOk;
    }
    abort(kExitInterrupted, "the sink was interrupted");
    stats_.batch_finished();
    progress_.finish();
    write_stats_file(false);
    // With -k, results held for the order are not written: --resume runs them again.
    log_warning("interrupted: " + written_text());
    return kExitInterrupted;
}

int Sink::give_up(Clock::time_point now) {
    flush_output();
    stats_.batch_finished();
    progress_.finish();
    write_stats_file(false);
    log_error("no word from the ventilator for " + seconds(now - last_heard_from_ventilator_) +
              " (--ventilator-timeout); giving up: " + written_text());
    return kExitGaveUp;
}

}  // namespace taskpipe

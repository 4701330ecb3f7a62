// The task store in memory (store.hpp): maps by id and by key, an ordered index of final tasks
// for expire(), and an undo log of the group for rollback().
#include <algorithm>
#include <cassert>
#include <set>
#include <unordered_map>
#include <utility>

#include "store.hpp"

namespace taskpipe {
namespace {

class MemoryStore final : public TaskStore {
  public:
    MemoryStore() : batch_(new_batch_id()) {}

    std::uint64_t batch() const override { return batch_; }

    SubmitOutcome submit(const Submission& submission) override {
        if (submission.key) {
            if (const auto it = keys_.find(*submission.key); it != keys_.end()) {
                const StoredTask& existing = tasks_.at(it->second);
                return {existing.payload == submission.payload ? SubmitOutcome::Kind::duplicate
                                                               : SubmitOutcome::Kind::conflict,
                        existing};
            }
        }
        StoredTask task;
        task.id = next_id_++;
        task.key = submission.key;
        task.payload = submission.payload;
        task.submitted_us = submission.now_us;
        task.not_before_us = submission.not_before_us;
        undo_.push_back({Undo::Kind::created, task.id, {}, {}});
        index(task);
        tasks_.emplace(task.id, task);
        return {SubmitOutcome::Kind::created, std::move(task)};
    }

    std::optional<TaskState> cancel(std::uint64_t id, std::uint64_t now_us) override {
        const auto it = tasks_.find(id);
        if (it == tasks_.end()) return std::nullopt;
        StoredTask& task = it->second;
        if (task.state == TaskState::queued) {
            change(task, [&] {
                task.state = TaskState::cancelled;
                task.final_us = now_us;
            });
        }
        return task.state;
    }

    bool mark_sent(std::uint64_t id, std::uint32_t attempts) override {
        const auto it = tasks_.find(id);
        if (it == tasks_.end() || !unfinished(it->second.state)) return false;
        StoredTask& task = it->second;
        change(task, [&] {
            task.state = TaskState::running;
            task.attempts = attempts;
        });
        return true;
    }

    bool record(std::uint64_t id, const StoredResult& result) override {
        const auto it = tasks_.find(id);
        if (it == tasks_.end() || !unfinished(it->second.state)) return false;
        StoredTask& task = it->second;
        change(task, [&] {
            task.state = TaskState::finished;
            task.final_us = result.finished_us;
            task.result = result;
        });
        return true;
    }

    std::size_t expire(std::uint64_t before_us, std::size_t limit) override {
        std::size_t expired = 0;
        while (expired < limit && !finals_.empty() && finals_.begin()->first < before_us) {
            const auto node = tasks_.extract(finals_.begin()->second);
            unindex(node.mapped());
            undo_.push_back({Undo::Kind::deleted, node.key(), {}, std::move(node.mapped())});
            ++expired;
        }
        return expired;
    }

    void commit() override {
        undo_.clear();
        group_next_id_ = next_id_;
    }

    void rollback() override {
        for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) {
            switch (it->kind) {
                case Undo::Kind::created:
                    unindex(tasks_.at(it->id));
                    tasks_.erase(it->id);
                    break;
                case Undo::Kind::changed: {
                    StoredTask& task = tasks_.at(it->id);
                    unindex(task);
                    task.state = it->before.state;
                    task.attempts = it->before.attempts;
                    task.final_us = it->before.final_us;
                    task.result.reset();  // only unfinished tasks change
                    index(task);
                    break;
                }
                case Undo::Kind::deleted:
                    index(*it->deleted);
                    tasks_.emplace(it->id, std::move(*it->deleted));
                    break;
            }
        }
        undo_.clear();
        next_id_ = group_next_id_;
    }

    std::optional<StoredTask> find(std::uint64_t id) const override {
        const auto it = tasks_.find(id);
        if (it == tasks_.end()) return std::nullopt;
        return it->second;
    }

    std::optional<StoredTask> find_key(std::string_view key) const override {
        const auto it = keys_.find(std::string(key));
        if (it == keys_.end()) return std::nullopt;
        return tasks_.at(it->second);
    }

    std::vector<StoredTask> unfinished() const override {
        std::vector<StoredTask> tasks;
        for (const auto& [id, task] : tasks_) {
            if (unfinished(task.state)) tasks.push_back(task);
        }
        std::sort(tasks.begin(), tasks.end(),
                  [](const StoredTask& a, const StoredTask& b) { return a.id < b.id; });
        return tasks;
    }

    StoreCounts counts() const override { return counts_; }

  private:
    // One entry per mutation of the group, undone in reverse order.
    struct Undo {
        enum class Kind { created, changed, deleted };
        struct Fields {  // what mutations of an unfinished task change
            TaskState state = TaskState::queued;
            std::uint32_t attempts = 0;
            std::uint64_t final_us = 0;
        };
        Kind kind;
        std::uint64_t id = 0;
        Fields before;                      // changed
        std::optional<StoredTask> deleted;  // deleted
    };

    static bool unfinished(TaskState state) {
        return state == TaskState::queued || state == TaskState::running;
    }

    // Applies `mutate` to an unfinished task, keeping the indexes and the undo log.
    template <typename Mutate>
    void change(StoredTask& task, Mutate mutate) {
        assert(unfinished(task.state));
        undo_.push_back(
            {Undo::Kind::changed, task.id, {task.state, task.attempts, task.final_us}, {}});
        unindex(task);
        mutate();
        index(task);
    }

    void index(const StoredTask& task) {
        if (task.key) keys_.emplace(*task.key, task.id);
        switch (task.state) {
            case TaskState::queued:
                ++counts_.queued;
                break;
            case TaskState::running:
                ++counts_.running;
                break;
            case TaskState::finished:
            case TaskState::cancelled:
                ++counts_.kept;
                finals_.emplace(task.final_us, task.id);
                break;
        }
    }

    void unindex(const StoredTask& task) {
        if (task.key) keys_.erase(*task.key);
        switch (task.state) {
            case TaskState::queued:
                --counts_.queued;
                break;
            case TaskState::running:
                --counts_.running;
                break;
            case TaskState::finished:
            case TaskState::cancelled:
                --counts_.kept;
                finals_.erase({task.final_us, task.id});
                break;
        }
    }

    std::uint64_t batch_;
    std::uint64_t next_id_ = 1;
    std::uint64_t group_next_id_ = 1;  // next_id_ when the group began
    std::unordered_map<std::uint64_t, StoredTask> tasks_;
    std::unordered_map<std::string, std::uint64_t> keys_;
    std::set<std::pair<std::uint64_t, std::uint64_t>> finals_;  // (final_us, id) of final tasks
    StoreCounts counts_;
    std::vector<Undo> undo_;
};

}  // namespace

std::unique_ptr<TaskStore> make_memory_store() { return std::make_unique<MemoryStore>(); }

}  // namespace taskpipe

// A set of task ids (those with a result, for exactly-once output; those acknowledged).
//
// Results arrive nearly in id order, so the set is a prefix (every id up to prefix() is done)
// plus the few ids done out of order above it: memory follows the disorder, not the batch size.
// Not thread-safe.
#pragma once

#include <cstdint>
#include <unordered_set>

namespace taskpipe {

class DoneSet {
  public:
    // Returns true when `id` was not in the set before.
    bool insert(std::uint64_t id) {
        if (id <= prefix_ || !above_.insert(id).second) return false;
        while (above_.erase(prefix_ + 1) == 1) ++prefix_;
        ++size_;
        return true;
    }
    // Removes every id above `last`; returns how many there were.
    std::uint64_t erase_above(std::uint64_t last) {
        std::uint64_t erased = 0;
        if (prefix_ > last) {
            erased += prefix_ - last;
            prefix_ = last;
        }
        erased += std::erase_if(above_, [last](std::uint64_t id) { return id > last; });
        size_ -= erased;
        return erased;
    }
    // Inserts every id from 1 to `last`; returns how many were new.
    std::uint64_t insert_through(std::uint64_t last) {
        if (last <= prefix_) return 0;
        const std::uint64_t before = size_;
        std::erase_if(above_, [last](std::uint64_t id) { return id <= last; });
        prefix_ = last;
        while (above_.erase(prefix_ + 1) == 1) ++prefix_;
        size_ = prefix_ + above_.size();
        return size_ - before;
    }
    bool contains(std::uint64_t id) const { return id <= prefix_ || above_.contains(id); }
    // The ids above prefix(), in no particular order.
    const std::unordered_set<std::uint64_t>& above() const { return above_; }
    std::uint64_t size() const { return size_; }
    std::uint64_t prefix() const { return prefix_; }

  private:
    std::uint64_t prefix_ = 0;
    std::unordered_set<std::uint64_t> above_;
    std::uint64_t size_ = 0;
};

}  // namespace taskpipe

// Time as two distinct types: monotonic (deadlines, intervals) and wall clock (timestamps on
// the wire). Cores take time as an argument; only shells read a Clock.
#pragma once

#include <chrono>

namespace trading_heal::common {

using MonoTime = std::chrono::steady_clock::time_point;
using WallTime = std::chrono::system_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual MonoTime mono() const = 0;
  virtual WallTime wall() const = 0;
};

class SystemClock final : public Clock {
 public:
  MonoTime mono() const override { return std::chrono::steady_clock::now(); }
  WallTime wall() const override { return std::chrono::system_clock::now(); }
};

// The process's one SystemClock, for what is not given one.
inline const Clock& process_clock() {
  static const SystemClock clock;
  return clock;
}

// A clock tests move by hand. Not thread-safe.
class FakeClock final : public Clock {
 public:
  MonoTime mono() const override { return mono_; }
  WallTime wall() const override { return wall_; }
  template <class D>
  void advance(D d) {
    mono_ += std::chrono::duration_cast<std::chrono::steady_clock::duration>(d);
    wall_ += std::chrono::duration_cast<std::chrono::system_clock::duration>(d);
  }
  void set_wall(WallTime t) { wall_ = t; }

 private:
  MonoTime mono_{std::chrono::hours(1000)};
  WallTime wall_{std::chrono::seconds(1785000000)};
};

inline double to_epoch_seconds(WallTime t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}
inline WallTime from_epoch_seconds(double s) {
  return WallTime(std::chrono::duration_cast<WallTime::duration>(std::chrono::duration<double>(s)));
}

}  // namespace trading_heal::common

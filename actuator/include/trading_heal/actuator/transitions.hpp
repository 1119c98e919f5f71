// The actuator's incident machine as data: one table of (phase, event) -> (guard, action, next
// phase, follow-up event) rows, and the (phase, event) pairs it ignores on purpose. The Engine
// turns every input into events and fires them through this table (actuator/src/core/
// machine.cpp); docs/actuator-states.md is generated from it (states_markdown()).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "trading_heal/actuator/agent_state.hpp"

namespace trading_heal::actuator {

enum class Event {
  kHealthy,          // report: healthy
  kFailing,          // report: down or stalled
  kStopped,          // report: stopped cleanly (an operator's systemctl stop)
  kUnknown,          // report: no facts
  kPidChanged,       // report: the MainPID before the restart in flight is gone
  kPidUnchanged,     // report: still that MainPID, and failing: the restart never happened
  kDiagnosis,        // a diagnosis came in
  kRestarted,        // the restart's result: done
  kRestartFailed,    // the restart's result: failed
  kRestartDeferred,  // the restart's result: a pre-restart hook said not now
  kTick,             // the loop's tick (deadlines)
  kResume,           // operator: resume
  kReleased,         // the global incident lets its held agents go, one at a time
  kRestored,         // the state file was loaded (the phase is the persisted one)
  kAttempt,          // internal: the restart decision's gates
  kAdmitted,         // internal: past the gates, the limits decide
};
inline constexpr int kEventCount = 16;
std::string_view to_string(Event e);
std::string_view describe(Event e);  // one line: what raises it

struct Step;  // one input being handled (actuator/src/core/step.hpp)

// A named condition on the agent (and the model, the time, the input).
struct Guard {
  bool (*holds)(const Step&, const AgentState&);
  std::string_view name;
  std::string_view text;  // for docs/actuator-states.md
};

// A named effect: audit events, decisions, the agent's incident data.
struct Action {
  void (*run)(Step&, AgentState&);
  std::string_view name;
  std::string_view text;
};

// In phase `from`, on `event`, when `guard` holds (nullptr: always): the phase becomes `to`,
// then `action` runs (nullptr: none), then `then` is fired in the new phase. Rows of one
// (from, event) are tried in order; the first whose guard holds fires, none: nothing happens.
struct Transition {
  Phase from;
  Event event;
  const Guard* guard;
  const Action* action;
  Phase to;
  std::optional<Event> then;
};

// (phase, event) pairs with no row, on purpose; `phases` is a bit set (bit i: Phase(i)).
struct Ignored {
  Event event;
  unsigned phases;
  std::string_view why;
};

constexpr unsigned phase_bit(Phase p) { return 1U << static_cast<unsigned>(p); }
inline constexpr unsigned kEveryPhase = (1U << kPhaseCount) - 1;

std::span<const Transition> transitions();
std::span<const Ignored> ignored_events();
bool is_ignored(Phase p, Event e);

// docs/actuator-states.md: the diagram, the phase x event matrix and the table, from the rows.
std::string states_markdown();

}  // namespace trading_heal::actuator

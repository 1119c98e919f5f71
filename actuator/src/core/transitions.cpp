// The incident machine, per agent: every (phase, event) pair has rows here or is ignored on
// purpose (kIgnored); tests/actuator/transitions_test.cpp checks both, and that
// docs/actuator-states.md is what states_markdown() makes of them.
//
// Changing a row? Run actuator_transitions_test with TH_UPDATE_DOCS=1 to regenerate the doc, and
// check the state-file restore rows (kRestored) still make sense for old files.
#include "trading_heal/actuator/transitions.hpp"

#include "rules.hpp"

namespace trading_heal::actuator {
namespace {

using E = Event;
using P = Phase;
using namespace rules;

// clang-format off
constexpr Transition kTable[] = {
  // from          event                guard                         action                     to              then
  {P::kHealthy,    E::kHealthy,         nullptr,                      &kStayHealthy,             P::kHealthy,    {}},
  {P::kHealthy,    E::kFailing,         nullptr,                      &kOpenIncident,            P::kFailing,    E::kFailing},
  {P::kHealthy,    E::kStopped,         nullptr,                      &kEndIncident,             P::kStopped,    {}},
  {P::kHealthy,    E::kTick,            &kStable,                     &kForgetBackoff,           P::kHealthy,    {}},

  {P::kFailing,    E::kHealthy,         nullptr,                      &kHealthyAgain,            P::kHealthy,    {}},
  {P::kFailing,    E::kFailing,         &kConfirmed,                  &kAwaitDiagnosis,          P::kDiagnosing, E::kFailing},
  {P::kFailing,    E::kStopped,         nullptr,                      &kEndIncident,             P::kStopped,    {}},

  {P::kDiagnosing, E::kHealthy,         nullptr,                      &kRecovered,               P::kHealthy,    {}},
  {P::kDiagnosing, E::kFailing,         &kDue,                        nullptr,                   P::kDiagnosing, E::kAttempt},
  {P::kDiagnosing, E::kStopped,         nullptr,                      &kEndIncident,             P::kStopped,    {}},
  {P::kDiagnosing, E::kDiagnosis,       &kEarlyDiagnosisWithFacts,    &kRestartSooner,           P::kDiagnosing, E::kAttempt},
  {P::kDiagnosing, E::kDiagnosis,       &kEarlyDiagnosisWithoutFacts, &kRestartSooner,           P::kDiagnosing, {}},
  {P::kDiagnosing, E::kTick,            &kDueWithFacts,               nullptr,                   P::kDiagnosing, E::kAttempt},
  {P::kDiagnosing, E::kTick,            &kDueWithoutFacts,            &kRetryLater,              P::kDiagnosing, {}},
  {P::kDiagnosing, E::kReleased,        &kHeldWithFacts,              nullptr,                   P::kDiagnosing, E::kAttempt},
  {P::kDiagnosing, E::kRestored,        nullptr,                      nullptr,                   P::kFailing,    {}},
  // The restart decision: the gates, then the limits.
  {P::kDiagnosing, E::kAttempt,         &kPaused,                     &kRetryLater,              P::kDiagnosing, {}},
  {P::kDiagnosing, E::kAttempt,         &kSystemdBusy,                &kLeaveToSystemd,          P::kDiagnosing, {}},
  {P::kDiagnosing, E::kAttempt,         &kHeldBack,                   &kHold,                    P::kDiagnosing, {}},
  {P::kDiagnosing, E::kAttempt,         nullptr,                      &kAdmit,                   P::kDiagnosing, E::kAdmitted},
  {P::kDiagnosing, E::kAdmitted,        &kRestartsDidNotHelp,         &kExhaust,                 P::kExhausted,  {}},
  {P::kDiagnosing, E::kAdmitted,        &kLimitReached,               &kRateLimit,               P::kDiagnosing, {}},
  {P::kDiagnosing, E::kAdmitted,        &kDryRun,                     &kWouldRestart,            P::kDiagnosing, {}},
  {P::kDiagnosing, E::kAdmitted,        nullptr,                      &kRestart,                 P::kRestarting, {}},

  {P::kRestarting, E::kDiagnosis,       &kLateDiagnosis,              &kAuditLateDiagnosis,      P::kRestarting, {}},
  {P::kRestarting, E::kRestarted,       nullptr,                      &kWatchRecovery,           P::kRecovering, {}},
  {P::kRestarting, E::kRestartFailed,   nullptr,                      &kRetryAfterCooldown,      P::kDiagnosing, {}},
  {P::kRestarting, E::kRestartDeferred, nullptr,                      &kRefundRestart,           P::kDiagnosing, {}},
  {P::kRestarting, E::kRestored,        nullptr,                      &kWatchRecoveryAfterReload, P::kRecovering, {}},

  {P::kRecovering, E::kHealthy,         &kNoDecisionSinceRestart,     nullptr,                   P::kRecovering, {}},
  {P::kRecovering, E::kHealthy,         nullptr,                      &kRecovered,               P::kHealthy,    {}},
  {P::kRecovering, E::kStopped,         &kStoppedBeforeRestart,       nullptr,                   P::kRecovering, {}},
  {P::kRecovering, E::kStopped,         nullptr,                      &kEndIncident,             P::kStopped,    {}},
  {P::kRecovering, E::kPidChanged,      nullptr,                      &kRestartConfirmed,        P::kRecovering, {}},
  {P::kRecovering, E::kPidUnchanged,    nullptr,                      &kRestartInterrupted,      P::kDiagnosing, {}},
  {P::kRecovering, E::kDiagnosis,       &kLateDiagnosis,              &kAuditLateDiagnosis,      P::kRecovering, {}},
  {P::kRecovering, E::kTick,            &kGraceOver,                  &kRestartIneffective,      P::kDiagnosing, E::kTick},
  {P::kRecovering, E::kRestored,        nullptr,                      &kWatchRecoveryAfterReload, P::kRecovering, {}},

  {P::kExhausted,  E::kHealthy,         nullptr,                      &kRecovered,               P::kHealthy,    {}},
  {P::kExhausted,  E::kStopped,         nullptr,                      &kEndIncident,             P::kStopped,    {}},
  {P::kExhausted,  E::kResume,          nullptr,                      &kLiftExhaustion,          P::kDiagnosing, {}},

  {P::kStopped,    E::kHealthy,         nullptr,                      &kHealthyAgain,            P::kHealthy,    {}},
  {P::kStopped,    E::kFailing,         nullptr,                      &kOpenIncident,            P::kFailing,    E::kFailing},
};

constexpr unsigned kAll = kEveryPhase;
constexpr unsigned all_but(Phase p) { return kEveryPhase & ~phase_bit(p); }
constexpr unsigned only(Phase p) { return phase_bit(p); }
constexpr unsigned operator|(Phase a, Phase b) { return phase_bit(a) | phase_bit(b); }

constexpr Ignored kIgnored[] = {
  {E::kUnknown,         kAll, "no facts: never a trigger, and it changes nothing already decided"},
  {E::kHealthy,         only(P::kRestarting), "the report may predate the restart"},
  {E::kFailing,         P::kRestarting | P::kRecovering,
                        "waiting for the restart's result, then its recovery grace"},
  {E::kFailing,         only(P::kExhausted), "no more restarts: waiting for healthy or an operator"},
  {E::kStopped,         only(P::kRestarting), "the restart's result decides"},
  {E::kStopped,         only(P::kStopped), "already stopped"},
  {E::kPidChanged,      all_but(P::kRecovering),
                        "only RECOVERING watches the MainPID of a restart persisted in flight"},
  {E::kPidUnchanged,    all_but(P::kRecovering),
                        "only RECOVERING watches the MainPID of a restart persisted in flight"},
  {E::kDiagnosis,       P::kHealthy | P::kFailing,
                        "kept for the incident (open or to come), restarts nothing yet"},
  {E::kDiagnosis,       P::kExhausted | P::kStopped, "kept and shown, restarts nothing"},
  {E::kRestarted,       all_but(P::kRestarting), "no restart in flight: a stale result"},
  {E::kRestartFailed,   all_but(P::kRestarting), "no restart in flight: a stale result"},
  {E::kRestartDeferred, all_but(P::kRestarting), "no restart in flight: a stale result"},
  {E::kTick,            P::kFailing | P::kRestarting, "no deadline in this phase"},
  {E::kTick,            P::kExhausted | P::kStopped, "no deadline in this phase"},
  {E::kResume,          all_but(P::kExhausted), "clears the pause flag only (no phase change)"},
  {E::kReleased,        all_but(P::kDiagnosing), "only agents held while DIAGNOSING are released"},
  {E::kRestored,        P::kHealthy | P::kFailing, "the persisted phase stands"},
  {E::kRestored,        P::kExhausted | P::kStopped, "the persisted phase stands"},
  {E::kAttempt,         all_but(P::kDiagnosing), "raised only by DIAGNOSING rows"},
  {E::kAdmitted,        all_but(P::kDiagnosing), "raised only by DIAGNOSING rows"},
};
// clang-format on

}  // namespace

std::span<const Transition> transitions() { return kTable; }
std::span<const Ignored> ignored_events() { return kIgnored; }

bool is_ignored(Phase p, Event e) {
  for (const auto& i : kIgnored) {
    if (i.event == e && (i.phases & phase_bit(p)) != 0) return true;
  }
  return false;
}

}  // namespace trading_heal::actuator

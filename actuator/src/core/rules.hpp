// The guards and actions the transition table names (transitions.cpp): the incident's up to the
// restart in incident_rules.cpp, after it in recovery_rules.cpp, the restart decision's in
// restart_rules.cpp.
#pragma once

#include "step.hpp"

namespace trading_heal::actuator::rules {

// incident_rules.cpp and recovery_rules.cpp
extern const Guard kConfirmed;
extern const Guard kDue;
extern const Guard kDueWithFacts;
extern const Guard kDueWithoutFacts;
extern const Guard kEarlyDiagnosisWithFacts;
extern const Guard kEarlyDiagnosisWithoutFacts;
extern const Guard kNoDecisionSinceRestart;
extern const Guard kStoppedBeforeRestart;
extern const Guard kLateDiagnosis;
extern const Guard kGraceOver;
extern const Guard kStable;
extern const Guard kHeldWithFacts;

extern const Action kOpenIncident;
extern const Action kAwaitDiagnosis;
extern const Action kRestartSooner;
extern const Action kEndIncident;
extern const Action kStayHealthy;
extern const Action kHealthyAgain;
extern const Action kRecovered;
extern const Action kAuditLateDiagnosis;
extern const Action kWatchRecovery;
extern const Action kRetryAfterCooldown;
extern const Action kRefundRestart;
extern const Action kRestartConfirmed;
extern const Action kRestartInterrupted;
extern const Action kRestartIneffective;
extern const Action kWatchRecoveryAfterReload;
extern const Action kLiftExhaustion;
extern const Action kForgetBackoff;

// restart_rules.cpp
extern const Guard kPaused;
extern const Guard kSystemdBusy;
extern const Guard kHeldBack;
extern const Guard kRestartsDidNotHelp;
extern const Guard kLimitReached;
extern const Guard kDryRun;

extern const Action kRetryLater;
extern const Action kLeaveToSystemd;
extern const Action kHold;
extern const Action kAdmit;
extern const Action kExhaust;
extern const Action kRateLimit;
extern const Action kWouldRestart;
extern const Action kRestart;

}  // namespace trading_heal::actuator::rules

#include "trading_heal/diagnoser/pipeline.hpp"

#include "trading_heal/common/text.hpp"
#include "trading_heal/diagnoser/cache.hpp"
#include "trading_heal/diagnoser/redact.hpp"

namespace trading_heal::diagnoser {

Prepared prepare(const IncidentContext& ctx, const std::vector<std::string>& raw_lines,
                 const RuleTable& rules) {
  Prepared p;
  p.context = ctx;
  p.lines = redact_lines(raw_lines);
  p.rule = classify(p.lines, Symptoms{ctx.verdict, ctx.decision_age_seconds}, rules);
  p.fingerprint = fingerprint(p.rule.category, p.lines);
  p.prompt = build_prompt(ctx, p.lines, p.rule);
  return p;
}

proto::Diagnosis rules_diagnosis(const Prepared& p, const std::string& incident) {
  proto::Diagnosis d;
  d.agent = p.context.agent;
  d.incident = incident;
  // The cause and the evidence may carry log text: inert (no escape sequence reaches a terminal,
  // and a multi-byte character cut by the length bound is repaired).
  d.cause = common::inert(p.rule.cause);
  d.severity = p.rule.severity;
  d.action = p.rule.action;
  d.explanation =
      p.rule.matched()
          ? "Matched log line: " + common::inert(p.rule.evidence.substr(0, 300))
          : "No rule matched the last " + std::to_string(p.lines.size()) + " journal lines";
  d.category = p.rule.category;
  d.source = "rules";
  return d;
}

Outcome decide(const Prepared& p, const LlmCall* call, const std::string& model,
               const std::string& incident, std::size_t max_answer_bytes) {
  Outcome o{rules_diagnosis(p, incident), std::nullopt};
  if (call == nullptr) return o;
  o.diagnosis.model = model;
  o.diagnosis.latency_seconds = call->latency_seconds;
  if (!call->content) {
    o.llm_error = call->content.error();
  } else if (auto a = parse_answer(*call->content, max_answer_bytes); !a) {
    o.llm_error = LlmError{a.error().reason, a.error().detail};
  } else {
    // The model only annotates: the agent, the category and the incident stay ours, and its
    // action was already checked against the enum.
    o.diagnosis.cause = a->cause;
    o.diagnosis.severity = a->severity;
    o.diagnosis.action = a->action;
    o.diagnosis.explanation = a->explanation;
    o.diagnosis.source = "llm";
  }
  if (o.llm_error) o.diagnosis.llm_error = o.llm_error->reason;
  return o;
}

}  // namespace trading_heal::diagnoser

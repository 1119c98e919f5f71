#!/usr/bin/env bash
# The permission generators: the polkit rule allows exactly the configured units and verbs (run
# in node against a mock polkit), is ES5 for duktape, and refuses an undefined unit; bad
# instance and user names are refused.
set -euo pipefail
SRC=${TRADING_HEAL_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
GEN=$SRC/deploy/permissions
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# --- polkit -----------------------------------------------------------------------------------
"$GEN/gen-polkit-rule.sh" --user th-act BTC_USDT,ETH_USDT_conservative >"$tmp/rule.js"
if grep -nE '(^|[^A-Za-z_])(let|const)[[:space:]]|=>|`' "$tmp/rule.js"; then
  fail "polkit rule is not ES5"
fi
if command -v node >/dev/null; then
  node --check "$tmp/rule.js" || fail "polkit rule does not parse"
  cat >"$tmp/run.js" <<'JS'
var fs = require("fs");
var rule = null;
var polkit = { Result: { YES: "yes", NO: "no", NOT_HANDLED: "not_handled" },
               addRule: function (f) { rule = f; } };
eval(fs.readFileSync(process.argv[2], "utf8"));
function check(id, user, unit, verb) {
  var action = { id: id, lookup: function (k) { return k === "unit" ? unit : (k === "verb" ? verb : undefined); } };
  return rule(action, { user: user });
}
var M = "org.freedesktop.systemd1.manage-units";
var cases = [
  [M, "th-act", "crypto-agent@BTC_USDT.service", "restart", "yes"],
  [M, "th-act", "crypto-agent@BTC_USDT.service", "reset-failed", "yes"],
  [M, "th-act", "crypto-agent@ETH_USDT_conservative.service", "restart", "yes"],
  [M, "th-act", "crypto-agent@BTC_USDT.service", "stop", "no"],
  [M, "th-act", "crypto-agent@BTC_USDT.service", "start", "no"],
  [M, "th-act", "crypto-agent@XRP_USDT.service", "restart", "no"],
  [M, "th-act", "crypto-agent@BTC_USDT.service sshd.service", "restart", "no"],
  [M, "th-act", "sshd.service", "restart", "no"],
  [M, "th-act", "crypto-agent@*", "restart", "no"],
  [M, "th-act", "hasOwnProperty", "restart", "no"],
  [M, "th-act", undefined, "restart", "no"],
  [M, "th-act", "crypto-agent@BTC_USDT.service", undefined, "no"],
  [M, "someone", "crypto-agent@BTC_USDT.service", "restart", "not_handled"],
  ["org.freedesktop.login1.reboot", "th-act", undefined, undefined, "not_handled"]
];
var bad = 0;
cases.forEach(function (c) {
  var got = check(c[0], c[1], c[2], c[3]);
  if (got !== c[4]) { bad++; console.log("case " + JSON.stringify(c) + " gave " + got); }
});
process.exit(bad ? 1 : 0);
JS
  node "$tmp/run.js" "$tmp/rule.js" || fail "polkit rule decisions"
fi

# --- refusals ---------------------------------------------------------------------------------
for bad in 'BTC_USDT.service sshd' '../x' 'crypto-agent@*' 'A;B' '' '_A'; do
  if env -u TRADING_HEAL_AGENTS "$GEN/gen-polkit-rule.sh" "$bad" >/dev/null 2>&1; then fail "polkit accepted '$bad'"; fi
done
if "$GEN/gen-polkit-rule.sh" --user 'root ALL' BTC_USDT >/dev/null 2>&1; then fail "bad user accepted"; fi
# No globbing: 'a*' in a directory holding a file "actuator" is refused, not read as "actuator".
mkdir -p "$tmp/glob" && touch "$tmp/glob/actuator"
if (cd "$tmp/glob" && env -u TRADING_HEAL_AGENTS "$GEN/gen-polkit-rule.sh" 'a*') >/dev/null 2>&1; then
  fail "'a*' was globbed into an agent name"
fi
[[ $(cd "$tmp/glob" && "$GEN/gen-polkit-rule.sh" 'BTC_USDT, ETH_USDT' | grep -c '"crypto-agent@') == 2 ]] ||
  fail "comma and blank separated agents"
echo "permissions: ok"

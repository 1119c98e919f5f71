// Fake secrets that the agent simulator leaks into its log in `leak-secrets` mode.
// They are not real credentials; tests grep the journal and the LLM prompt for them to prove
// that redaction happened. Change these together with any test that hard-codes them.
#pragma once

namespace trading_heal::agent_sim {

inline constexpr const char* kLeakDsnPassword = "S3cretPassw0rd";
inline constexpr const char* kLeakDsn = "postgresql://trader:S3cretPassw0rd@127.0.0.1:5432/trading";
inline constexpr const char* kLeakKucoinApiKey = "64f1c0ffee5eed00ba5eba11";
inline constexpr const char* kLeakApiSecret = "9b2e7d4c-5a1f-4e3b-8c6d-0f1a2b3c4d5e";
inline constexpr const char* kLeakPassphrase = "Tr4d3rPassphr4se";
inline constexpr const char* kLeakBearerToken =
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0cmFkZXIifQ.ZmFrZS1zaWduYXR1cmU";
inline constexpr const char* kLeakTelegramToken = "123456789:AAHfakeTelegramTokenForTests_012345";

}  // namespace trading_heal::agent_sim

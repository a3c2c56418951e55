// API keys: `--api-key KEY` or `--api-keys-file FILE`, checked against `Authorization: Bearer KEY`.
//
// Keys file format, one key per line:
//     KEY [name=NAME] [rpm=N] [tpm=N] [concurrent=N]
// '#' starts a comment (whole line or after whitespace), blank lines are ignored. KEY is any run of
// printable non-space ASCII. NAME ([A-Za-z0-9._:@-]+) is what logs, metrics and the usage ledger show;
// it defaults to "key-" + the first 8 hex digits of SHA-256(KEY) (the key itself is never shown).
// Limits are per minute / in flight; 0 or absent = unlimited. Errors name "FILE:LINE". Duplicate keys
// and duplicate names are errors.
//
// Thread-safety: ApiKeys is immutable after construction; every const method is safe from any thread.
// The ApiKey pointers authenticate() returns live as long as the ApiKeys object.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "server/sha256.h"

namespace frugal {

struct KeyLimits {
  int64_t requests_per_minute = 0;  // 0 = unlimited
  int64_t tokens_per_minute = 0;    // prompt + completion tokens; 0 = unlimited
  int64_t max_concurrent = 0;       // requests in flight; 0 = unlimited
  bool unlimited() const { return requests_per_minute == 0 && tokens_per_minute == 0 && max_concurrent == 0; }
};

struct ApiKey {
  std::string key;   // secret: never log it
  std::string name;  // unique within an ApiKeys
  KeyLimits limits;
};

class ApiKeys {
 public:
  // No keys: enabled() is false and the server is open.
  ApiKeys() = default;

  static StatusOr<ApiKeys> load_file(const std::string& path);
  // The same parser on text in memory; source_name prefixes error messages ("FILE:LINE: ...").
  static StatusOr<ApiKeys> parse(std::string_view text, const std::string& source_name);
  // One key (from --api-key), named "default". Error if the key is empty or has spaces/control bytes.
  static StatusOr<ApiKeys> single(const std::string& key, KeyLimits limits = {});

  bool enabled() const { return !keys_.empty(); }
  size_t size() const { return keys_.size(); }
  const std::vector<ApiKey>& keys() const { return keys_; }

  // authorization_header: the value of the Authorization header, "Bearer KEY" (scheme case-insensitive,
  // surrounding spaces ignored). Returns the matching key or nullptr (also for a missing/malformed
  // header). The presented key is hashed and compared with every configured key's digest without early
  // exit, so timing does not reveal how much of a key matched or which key.
  const ApiKey* authenticate(std::string_view authorization_header) const;
  // Same check for a bare key (e.g. from an x-api-key header).
  const ApiKey* authenticate_key(std::string_view key) const;

  const ApiKey* find_by_name(std::string_view name) const;

 private:
  std::vector<ApiKey> keys_;
  std::vector<Sha256Digest> digests_;  // digests_[i] = sha256(keys_[i].key)
};

}  // namespace frugal

#include "routing/message_id.h"

// The state struct's layout is needed to keep it on the stack (no heap
// allocation per recipient on the fan-out path).
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

namespace relay {

message_id make_message_id(std::string_view job_id, std::string_view user_id, channel ch, uint8_t step) {
  // Streaming over the three parts hashes exactly the bytes
  // job_id '\0' user_id '\0' channel-name, without concatenating them.
  // The '\0' separators keep ("ab","c") and ("a","bc") apart; ids never
  // contain '\0' (parse_job and the registry reject it).
  XXH3_state_t state;
  XXH3_INITSTATE(&state);
  XXH3_128bits_reset(&state);
  static constexpr char kSeparator = '\0';
  XXH3_128bits_update(&state, job_id.data(), job_id.size());
  XXH3_128bits_update(&state, &kSeparator, 1);
  XXH3_128bits_update(&state, user_id.data(), user_id.size());
  XXH3_128bits_update(&state, &kSeparator, 1);
  const std::string_view name = to_string(ch);
  XXH3_128bits_update(&state, name.data(), name.size());
  if (step != 0) {
    // job_id '\0' user_id '\0' channel-name '\0' step: a channel name never
    // contains '\0', so no later step collides with step 0.
    const char tail[2] = {kSeparator, static_cast<char>(step)};
    XXH3_128bits_update(&state, tail, sizeof(tail));
  }
  const XXH128_hash_t hash = XXH3_128bits_digest(&state);

  // The canonical (big-endian) form is xxHash's stable, documented byte order,
  // the same bytes `xxhsum -H2` prints.
  XXH128_canonical_t canonical;
  XXH128_canonicalFromHash(&canonical, hash);

  static constexpr char kHex[] = "0123456789abcdef";
  message_id out;
  for (size_t i = 0; i < sizeof(canonical.digest); ++i) {
    out[2 * i] = kHex[canonical.digest[i] >> 4];
    out[2 * i + 1] = kHex[canonical.digest[i] & 0xf];
  }
  return out;
}

}  // namespace relay

// Durable file writes, once for every daemon: the whole buffer written (EINTR retried), a
// directory's entries made durable, and a file replaced atomically (a reader sees the old
// content or the new, and after a crash the new one once this returned).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <string_view>

#include <tl/expected.hpp>

namespace trading_heal::common {

// Writes all of `n` bytes; false on an error (errno set).
bool write_all(int fd, const char* p, std::size_t n);
// fsync of the directory holding `path` (a rename or a new file in it survives a crash).
void fsync_dir_of(const std::string& path);
// PATH.tmp written, fsync'ed and renamed over `path`, then the directory fsync'ed. A failed
// write or fsync abandons the temp file (the next call writes a fresh one). The error names the
// step and the file: "cannot write /var/lib/x.json.tmp: No space left on device".
tl::expected<void, std::string> replace_file(const std::string& path, std::string_view text,
                                             mode_t mode = 0640);

}  // namespace trading_heal::common

// The names of a store's files, in one place (as leveldb's db/filename.h):
// a blob's .conf, .stat and sidecar, our temporaries, block names (which
// ones are acceptable in a .stat, and which ones we made), and the files of
// a ragged dataset (ragged.h declares those, since tblob uses them).
#pragma once

#include <string>
#include <string_view>

#include "tensorblob/blob_format.h"
#include "tensorblob/storage.h"

namespace tensorblob {

inline constexpr const char* kConfName = ".conf";
inline constexpr const char* kStatName = ".stat";
inline constexpr const char* kBlobHashesName = ".hashes.npy";  // item_hashes.h

// temp_name(), the temporary a publish of a file writes first, is declared
// in storage.h (a writable mount stages under such names too).
// Whether `name` is one of our temporaries ("<x>.tmp" or "<x>.tmp.<pid>").
bool is_temp_name(std::string_view name);

// new_block_name() and is_valid_block_name() are declared in blob_format.h
// (they are part of the format) and defined with the other names here. New
// block names are random UUIDv4s, as Python gives a new block, whose last
// four hex digits are our tag, so a writer can tell the blocks it made (and
// may remove when no commit lists them) from anyone else's.
//
// Whether `name` is a block name new_block_name() could have made.
bool is_our_block_name(std::string_view name);

}  // namespace tensorblob

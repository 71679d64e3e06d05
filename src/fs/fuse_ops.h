// The FUSE low-level callbacks: thin wrappers that parse, ask the Filesystem,
// and reply, with exceptions turned into an errno in one place.
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

namespace blobfs {

// The operations table; userdata passed to fuse_session_new must be a Filesystem*.
const fuse_lowlevel_ops& fuse_operations();

}  // namespace blobfs

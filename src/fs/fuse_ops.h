// The FUSE low-level callbacks: thin wrappers that parse, ask the Filesystem,
// and reply, with exceptions turned into an errno in one place.
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

namespace blobfs {

class CatalogFs;
class Filesystem;
class RingTransport;
class SameInodes;
struct Options;

// What the callbacks share: the files, and what the kernel agreed to in init.
// Exactly one of fs (with same) and catalog is set.
struct MountState {
  const Options* options = nullptr;
  Filesystem* fs = nullptr;  // a single-store mount
  SameInodes* same = nullptr;
  CatalogFs* catalog = nullptr;  // a data directory
  RingTransport* ring = nullptr;  // requests also arrive through io_uring
  bool no_open = false;     // opens never reach the daemon (FUSE_CAP_NO_OPEN_SUPPORT)
  bool no_opendir = false;  // nor do opendirs (FUSE_CAP_NO_OPENDIR_SUPPORT)
};

// The operations table; userdata passed to fuse_session_new must be a MountState*.
const fuse_lowlevel_ops& fuse_operations();

}  // namespace blobfs

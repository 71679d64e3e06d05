// The errno a FUSE reply carries for a store error: the operating system's
// own answer where it explains the failure to a program (a full disk is
// ENOSPC, not EIO), EIO for damaged or missing backing data (the mount
// contract), EINVAL for a request the store refuses.
#pragma once

#include "tensorblob/error.h"

namespace blobfs {

int errno_for(const tensorblob::Error& error);

}  // namespace blobfs

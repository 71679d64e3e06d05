#include <catch2/catch.hpp>
#include <cerrno>

#include "errors.h"

using blobfs::errno_for;
using tensorblob::Errc;
using tensorblob::Error;

TEST_CASE("store errors keep the errno that explains them to a program") {
  CHECK(errno_for(Error(Errc::kIo, "b/x: fallocate: No space left on device", ENOSPC)) == ENOSPC);
  CHECK(errno_for(Error(Errc::kIo, "quota", EDQUOT)) == EDQUOT);
  CHECK(errno_for(Error(Errc::kIo, "too big", EFBIG)) == EFBIG);
  CHECK(errno_for(Error(Errc::kIo, "denied", EACCES)) == EACCES);
  CHECK(errno_for(Error(Errc::kIo, "read-only", EROFS)) == EROFS);
  CHECK(errno_for(Error(Errc::kBusy, "another writer has this blob open", EBUSY)) == EBUSY);
  // Damaged or missing backing data is EIO, as the mount contract says.
  CHECK(errno_for(Error(Errc::kNotFound, "b/x: block file listed in .stat is missing", ENOENT)) == EIO);
  CHECK(errno_for(Error(Errc::kFormat, "b/x: block file is 7 bytes")) == EIO);
  CHECK(errno_for(Error(Errc::kCorrupt, "item 3 does not match")) == EIO);
  CHECK(errno_for(Error(Errc::kIo, "shrank", ENODATA)) == EIO);
  CHECK(errno_for(Error(Errc::kIo, "disk", EIO)) == EIO);
  CHECK(errno_for(Error(Errc::kInvalidArgument, "bad shape")) == EINVAL);
}

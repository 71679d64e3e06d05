#include "errors.h"

#include <cerrno>

namespace blobfs {

int errno_for(const tensorblob::Error& e) {
  switch (e.sys_errno()) {
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
    case EACCES:
    case EPERM:
    case EROFS:
    case ENOMEM:
    case EBUSY:
      return e.sys_errno();
    default:
      break;
  }
  switch (e.code()) {
    case tensorblob::Errc::kInvalidArgument:
    case tensorblob::Errc::kOutOfRange:
      return EINVAL;
    case tensorblob::Errc::kBusy:
      return EBUSY;
    default:
      // A file of the mount exists; that its backing block is missing,
      // damaged or cut is an I/O error, whatever errno the store saw.
      return EIO;
  }
}

}  // namespace blobfs

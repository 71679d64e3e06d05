#include "tensorblob/tensor.h"

#include <string>

#include "tensorblob/error.h"

namespace tensorblob {

Tensor Tensor::uninitialized(DType dtype, Shape shape) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.bytes_.resize(static_cast<size_t>(item_bytes(dtype, t.shape_)));
  return t;
}

Tensor::Tensor(DType dtype, Shape shape) : Tensor(uninitialized(dtype, std::move(shape))) {
  if (!bytes_.empty()) std::memset(bytes_.data(), 0, bytes_.size());
}

void Tensor::check_elem_size(size_t size) const {
  if (size != dtype_info(dtype_).itemsize)
    throw Error(Errc::kInvalidArgument, "element type of " + std::to_string(size) +
                                            " bytes does not match dtype " +
                                            std::string(dtype_info(dtype_).name));
}

void Tensor::throw_size_mismatch(size_t got, size_t want) {
  throw Error(Errc::kInvalidArgument, "got " + std::to_string(got) + " bytes of values for a tensor of " +
                                          std::to_string(want) + " bytes");
}

}  // namespace tensorblob

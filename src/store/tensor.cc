#include "tensorblob/tensor.h"

#include <string>

#include "tensorblob/error.h"

namespace tensorblob {

Tensor::Tensor(DType dtype, Shape shape)
    : dtype_(dtype),
      shape_(std::move(shape)),
      bytes_(static_cast<size_t>(item_bytes(dtype, shape_))) {}

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

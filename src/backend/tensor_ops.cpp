#include "resnet/backend/tensor_ops.h"

#include <algorithm>

#include "dnnl_context.h"

namespace resnet::backend {

using namespace detail;

namespace {

// oneDNN has no rank 0: a scalar is viewed as [1].
Shape at_least_1d(const Shape& s) {
  return s.empty() ? Shape{1} : s;
}

// `s` with leading 1s up to `rank` dimensions (NumPy aligns shapes from the last axis).
Shape padded_to(const Shape& s, size_t rank) {
  Shape p(rank - std::min(rank, s.size()), 1);
  p.insert(p.end(), s.begin(), s.end());
  return p;
}

void check_input(const char* who, const Tensor& x) {
  RESNET_CHECK(
      x.defined() && x.dtype() == DType::f32 && x.is_plain(),
      who << ": expected a plain f32 tensor, got "
          << (x.defined() ? x.shape_str() + " " + dtype_name(x.dtype()) : std::string("nothing")));
}

// The storage of plain `t` viewed as `shape` (same number of elements).
memory view(const Tensor& t, const Shape& shape) {
  return memory(plain_desc(shape), engine(), const_cast<void*>(t.raw()));
}

dnnl::algorithm algorithm_of(BinaryOp op) {
  switch (op) {
    case BinaryOp::add:
      return dnnl::algorithm::binary_add;
    case BinaryOp::sub:
      return dnnl::algorithm::binary_sub;
    case BinaryOp::mul:
      return dnnl::algorithm::binary_mul;
    default:
      return dnnl::algorithm::binary_div;
  }
}

// dst = src0 OP src1, src0 of dst's shape, src1 broadcast where its size is 1 (what
// oneDNN's binary primitive takes).
void binary_into(dnnl::algorithm alg, const memory& src0, const memory& src1, const memory& dst) {
  dnnl::binary::desc d(alg, src0.get_desc(), src1.get_desc(), dst.get_desc());
  dnnl::binary prim({d, with_user_scratchpad(), engine()});
  execute(prim, {{DNNL_ARG_SRC_0, src0}, {DNNL_ARG_SRC_1, src1}, {DNNL_ARG_DST, dst}});
}

}  // namespace

Tensor tensor_binary(BinaryOp op, const Tensor& a, const Tensor& b, const Shape& out_shape) {
  return guarded("binary", [&] {
    check_input("binary", a);
    check_input("binary", b);
    const Shape out = at_least_1d(out_shape);
    const Shape sa = padded_to(a.shape(), out.size()), sb = padded_to(b.shape(), out.size());
    Tensor y = Tensor::empty(out_shape, DType::f32, Layout::plain);
    const memory dst = view(y, out);
    if (sa == out) {
      binary_into(algorithm_of(op), view(a, sa), view(b, sb), dst);
    } else {
      // oneDNN broadcasts only its second source: a is broadcast into y first (0 + a).
      Tensor zeros(out_shape);
      binary_into(dnnl::algorithm::binary_add, view(zeros, out), view(a, sa), dst);
      binary_into(algorithm_of(op), dst, view(b, sb), dst);
    }
    return y;
  });
}

Tensor tensor_clip(const Tensor& x, float lo, float hi) {
  return guarded("clip", [&] {
    check_input("clip", x);
    const Shape s = at_least_1d(x.shape());
    Tensor y = Tensor::empty(x.shape(), DType::f32, Layout::plain);
    dnnl::eltwise_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::eltwise_clip,
                                  plain_desc(s), lo, hi);
    dnnl::eltwise_forward prim({d, with_user_scratchpad(), engine()});
    execute(prim, {{DNNL_ARG_SRC, view(x, s)}, {DNNL_ARG_DST, view(y, s)}});
    return y;
  });
}

Tensor tensor_reduce_mean(const Tensor& x, const std::vector<bool>& reduced) {
  return guarded("reduce_mean", [&] {
    check_input("reduce_mean", x);
    RESNET_CHECK(reduced.size() == x.shape().size(),
                 "reduce_mean: expected one flag per axis of " << x.shape_str());
    Shape kept = x.shape();
    for (size_t i = 0; i < kept.size(); ++i)
      if (reduced[i]) kept[i] = 1;
    const Shape s = at_least_1d(x.shape()), ks = at_least_1d(kept);
    Tensor y = Tensor::empty(kept, DType::f32, Layout::plain);
    if (ks == s) {  // nothing reduced (oneDNN refuses a reduction that reduces nothing)
      std::copy_n(x.f32(), x.numel(), y.f32());
      return y;
    }
    dnnl::reduction::desc d(dnnl::algorithm::reduction_mean, plain_desc(s), plain_desc(ks), 0.f,
                            0.f);
    dnnl::reduction prim({d, with_user_scratchpad(), engine()});
    execute(prim, {{DNNL_ARG_SRC, view(x, s)}, {DNNL_ARG_DST, view(y, ks)}});
    return y;
  });
}

Tensor tensor_softmax(const Tensor& x, size_t axis) {
  return guarded("softmax", [&] {
    check_input("softmax", x);
    const Shape s = at_least_1d(x.shape());
    RESNET_CHECK(axis < s.size(), "softmax: axis " << axis << " of " << x.shape_str());
    Tensor y = Tensor::empty(x.shape(), DType::f32, Layout::plain);
    dnnl::softmax_forward::desc d(dnnl::prop_kind::forward_inference, plain_desc(s),
                                  static_cast<int>(axis));
    dnnl::softmax_forward prim({d, with_user_scratchpad(), engine()});
    execute(prim, {{DNNL_ARG_SRC, view(x, s)}, {DNNL_ARG_DST, view(y, s)}});
    return y;
  });
}

Tensor tensor_transpose(const Tensor& x, const std::vector<size_t>& perm) {
  return guarded("transpose", [&] {
    check_input("transpose", x);
    RESNET_CHECK(perm.size() == x.shape().size(),
                 "transpose: expected a permutation of " << x.rank() << " axes");
    if (x.rank() == 0) return x.clone();
    // The input read through permuted strides is the output's logical tensor; a reorder
    // writes it row-major.
    memory::dims in_strides(perm.size(), 1);
    for (size_t i = perm.size() - 1; i-- > 0;)
      in_strides[i] = in_strides[i + 1] * x.dim(static_cast<int>(i + 1));
    Shape out;
    memory::dims strides;
    for (size_t p : perm) {
      out.push_back(x.dim(static_cast<int>(p)));
      strides.push_back(in_strides[p]);
    }
    Tensor y = Tensor::empty(out, DType::f32, Layout::plain);
    const memory src(memory::desc(to_dims(out), dt::f32, strides), engine(),
                     const_cast<void*>(x.raw()));
    reorder_into(src, view(y, out));
    return y;
  });
}

Tensor tensor_matmul(const Tensor& a, const Tensor& b, const Shape& out_shape) {
  return guarded("matmul", [&] {
    check_input("matmul", a);
    check_input("matmul", b);
    RESNET_CHECK(a.rank() >= 1 && b.rank() >= 2,
                 "matmul: expected " << a.shape_str() << " times a matrix, got " << b.shape_str());
    // A vector a is a row [1, K]; every operand gets the output's rank (batches of 1).
    const Shape as = a.rank() == 1 ? Shape{1, a.dim(0)} : a.shape();
    const size_t rank = std::max(as.size(), b.shape().size());
    const Shape sa = padded_to(as, rank), sb = padded_to(b.shape(), rank);
    Shape sy(rank);
    for (size_t i = 0; i + 2 < rank; ++i) sy[i] = std::max(sa[i], sb[i]);
    sy[rank - 2] = sa[rank - 2];
    sy[rank - 1] = sb[rank - 1];
    RESNET_CHECK(
        shape_numel(sy) == shape_numel(out_shape),
        "matmul: " << shape_str(sy) << " does not fit the output " << shape_str(out_shape));
    Tensor y = Tensor::empty(out_shape, DType::f32, Layout::plain);
    dnnl::matmul::desc d(plain_desc(sa), plain_desc(sb), plain_desc(sy));
    dnnl::matmul prim({d, with_user_scratchpad(), engine()});
    execute(prim, {{DNNL_ARG_SRC, view(a, sa)},
                   {DNNL_ARG_WEIGHTS, view(b, sb)},
                   {DNNL_ARG_DST, view(y, sy)}});
    return y;
  });
}

}  // namespace resnet::backend

#include "model/cached_pixelcnn.h"

#include <utility>
#include <vector>

#include "model/layers.h"

namespace agave::model {
namespace {

constexpr int64_t kScales = 3;

// A WeightNormConv2d with its effective kernel formed once (the module recomputes g·V/‖V‖ on
// every call, which would cost more than the one-position convolutions themselves).
struct Conv {
  torch::Tensor w;     // conv: out×in×kh×kw; transposed: in×out×kh×kw
  torch::Tensor w1x1;  // transposed: (out·kh·kw)×in×1×1, one input position → its output block
  torch::Tensor b;
  int64_t kh = 1, kw = 1, stride = 1, pad_left = 0, pad_top = 0;
  int64_t crop_left = 0, crop_right = 0;  // transposed only
  bool transposed = false;
};

Conv freeze(const WeightNormConv2dImpl& m) {
  const auto& o = m.options;
  const auto k = *o.kernel_size();
  const auto s = *o.stride();
  TORCH_CHECK(s[0] == s[1], "CachedPixelCnn: unequal strides are not supported");
  Conv c;
  c.w = m.weight().detach().to(torch::kFloat).contiguous();
  c.b = m.b.detach().to(torch::kFloat).contiguous();
  c.kh = k[0];
  c.kw = k[1];
  c.stride = s[0];
  c.transposed = o.transposed();
  if (c.transposed) {
    const auto crop = *o.crop();
    // A kernel as tall as the stride with no row crop maps input row r to exactly the output
    // rows s·r … s·r + s − 1, which is what lets the sampler run it one row / block at a time.
    TORCH_CHECK(c.kh == c.stride && crop[2] == 0 && crop[3] == 0,
                "CachedPixelCnn: transposed conv must have kernel height = stride, no row crop");
    c.crop_left = crop[0];
    c.crop_right = crop[1];
    c.w1x1 = c.w.permute({1, 2, 3, 0}).reshape({-1, c.w.size(0), 1, 1}).contiguous();
  } else {
    const auto pad = *o.pad();
    c.pad_left = pad[0];
    c.pad_top = pad[2];
  }
  return c;
}

Conv freeze(torch::nn::ModuleList& list, int64_t i) {
  return freeze(*list[i]->as<WeightNormConv2d>());
}

enum class Pre { kNone, kElu, kConcatElu };

torch::Tensor apply_pre(const torch::Tensor& x, Pre pre) {
  switch (pre) {
    case Pre::kElu:
      return torch::elu(x);
    case Pre::kConcatElu:
      return concat_elu(x);
    case Pre::kNone:
      break;
  }
  return x;
}

// Rows [r0, r1) × columns [c0, c1) of the channel concatenation of `maps`, `pre` applied, with
// zeros where the window leaves the map: the zero padding of the full forward. Padding after
// `pre` is the same as before it because elu(0) = 0.
torch::Tensor gather(const std::vector<const torch::Tensor*>& maps, int64_t r0, int64_t r1,
                     int64_t c0, int64_t c1, Pre pre) {
  const int64_t h = maps[0]->size(2), w = maps[0]->size(3);
  const int64_t a0 = std::max<int64_t>(r0, 0), a1 = std::min(r1, h);
  const int64_t b0 = std::max<int64_t>(c0, 0), b1 = std::min(c1, w);
  TORCH_INTERNAL_ASSERT(a0 < a1 && b0 < b1, "CachedPixelCnn: window outside the map");
  torch::Tensor x;
  if (maps.size() == 1) {
    x = maps[0]->slice(2, a0, a1).slice(3, b0, b1);
  } else {
    std::vector<torch::Tensor> parts;
    for (const auto* m : maps) parts.push_back(m->slice(2, a0, a1).slice(3, b0, b1));
    x = torch::cat(parts, 1);
  }
  x = apply_pre(x, pre);
  if (a0 != r0 || a1 != r1 || b0 != c0 || b1 != c1) {
    x = torch::constant_pad_nd(x, {b0 - c0, c1 - b1, a0 - r0, r1 - a1});
  }
  return x;
}

// Output rows [r0, r1) × columns [c0, c1) of a (non-transposed) conv of the concatenated maps.
// Always a conv2d, even for one position: Debian's LibTorch calls the reference BLAS for fp32
// matmuls (~2 GFLOP/s here), while conv2d goes to oneDNN.
torch::Tensor conv_window(const Conv& c, const std::vector<const torch::Tensor*>& maps, Pre pre,
                          int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
  const int64_t s = c.stride;
  auto x = gather(maps, r0 * s - c.pad_top, (r1 - 1) * s - c.pad_top + c.kh, c0 * s - c.pad_left,
                  (c1 - 1) * s - c.pad_left + c.kw, pre);
  return torch::conv2d(x, c.w, c.b, s);
}

void write(torch::Tensor& map, int64_t r0, int64_t c0, const torch::Tensor& value) {
  map.slice(2, r0, r0 + value.size(2)).slice(3, c0, c0 + value.size(3)).copy_(value);
}

enum class Kind { kInitU, kInitUl, kBlock, kDownsample, kUpsample, kOut };
enum class Stream { kU, kUl };

// One layer of the PixelCNN in execution order. Maps are indices into State::maps.
struct Node {
  Node(Kind kind_, Stream stream_, int64_t scale_) : kind(kind_), stream(stream_), scale(scale_) {}
  Kind kind;
  Stream stream;
  int64_t scale;               // resolution of the output: H / 2^scale
  int64_t in = -1, out = -1;   // input and output maps (kInit*: input = the canvas)
  std::vector<int64_t> skips;  // maps concatenated into the gated resnet's skip input
  Conv conv1, conv2, nin;      // kInitUl: conv1 = ul_init_down, conv2 = ul_init_right
  torch::Tensor c1;            // kBlock: cache of concat_elu(c1), the input of conv2
  torch::Tensor cond;          // kBlock: cond_conv(elu(h)) for the whole image, or undefined
};

// Every cache is channels_last: reading or writing one position then touches C contiguous
// floats per image instead of C cache lines, and oneDNN convolves NHWC without reordering.
torch::Tensor zeros(int64_t n, int64_t c, int64_t h, int64_t w) {
  return torch::zeros({n, c, h, w},
                      torch::TensorOptions().memory_format(at::MemoryFormat::ChannelsLast));
}

torch::Tensor channels_last(const torch::Tensor& x) {
  return x.contiguous(at::MemoryFormat::ChannelsLast);
}

}  // namespace

struct CachedPixelCnn::State {
  int64_t n, height, width, channels;
  std::vector<torch::Tensor> maps;  // maps[0]: the canvas with its ones channel
  std::vector<Node> nodes;
  int64_t next_i = 0, next_j = 0;  // the pixel params_at may be asked for
  int64_t u_row = -1;              // last image row whose u stream is computed

  int64_t new_map(int64_t channels_, int64_t scale) {
    maps.push_back(zeros(n, channels_, height >> scale, width >> scale));
    return static_cast<int64_t>(maps.size()) - 1;
  }

  void run_u(Node& node, int64_t r);
  torch::Tensor run_ul(Node& node, int64_t r, int64_t c);
  void run_block(Node& node, int64_t r0, int64_t r1, int64_t c0, int64_t c1);
};

void CachedPixelCnn::State::run_block(Node& node, int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
  const auto& x = maps[node.in];
  auto c = conv_window(node.conv1, {&x}, Pre::kConcatElu, r0, r1, c0, c1);
  if (!node.skips.empty()) {
    std::vector<const torch::Tensor*> skip;
    for (int64_t m : node.skips) skip.push_back(&maps[m]);
    c = c + conv_window(node.nin, skip, Pre::kConcatElu, r0, r1, c0, c1);
  }
  write(node.c1, r0, c0, concat_elu(c));
  auto c2 = conv_window(node.conv2, {&node.c1}, Pre::kNone, r0, r1, c0, c1);
  if (node.cond.defined()) c2 = c2 + node.cond.slice(2, r0, r1).slice(3, c0, c1);
  auto ab = c2.chunk(2, 1);
  auto y = x.slice(2, r0, r1).slice(3, c0, c1) + ab[0] * torch::sigmoid(ab[1]);
  write(maps[node.out], r0, c0, y);
}

// Row r (at the node's scale) of a u-stream layer.
void CachedPixelCnn::State::run_u(Node& node, int64_t r) {
  auto& out = maps[node.out];
  const int64_t w = out.size(3);
  switch (node.kind) {
    case Kind::kInitU:
      // down_shift: row r is the conv's row r − 1, row 0 stays zero.
      if (r > 0) write(out, r, 0, conv_window(node.conv1, {&maps[0]}, Pre::kNone, r - 1, r, 0, w));
      break;
    case Kind::kBlock:
      run_block(node, r, r + 1, 0, w);
      break;
    case Kind::kDownsample:
      write(out, r, 0, conv_window(node.conv1, {&maps[node.in]}, Pre::kNone, r, r + 1, 0, w));
      break;
    case Kind::kUpsample: {
      // Input row r/2 fills output rows r and r + 1; the odd row was written with the even one.
      if (r % 2 != 0) break;
      const auto& c = node.conv1;
      auto y =
          torch::conv_transpose2d(maps[node.in].slice(2, r / 2, r / 2 + 1), c.w, c.b, c.stride);
      write(out, r, 0, y.slice(3, c.crop_left, y.size(3) - c.crop_right));
      break;
    }
    default:
      TORCH_INTERNAL_ASSERT(false, "CachedPixelCnn: not a u-stream node");
  }
}

// Position (r, c) (at the node's scale) of a ul-stream layer; returns the mixture parameters
// for the output node, an undefined tensor otherwise.
torch::Tensor CachedPixelCnn::State::run_ul(Node& node, int64_t r, int64_t c) {
  switch (node.kind) {
    case Kind::kInitUl: {
      // down_shift(ul_init_down(x)) + right_shift(ul_init_right(x)); (0, 0) stays zero.
      torch::Tensor v;
      if (r > 0) v = conv_window(node.conv1, {&maps[0]}, Pre::kNone, r - 1, r, c, c + 1);
      if (c > 0) {
        auto right = conv_window(node.conv2, {&maps[0]}, Pre::kNone, r, r + 1, c - 1, c);
        v = v.defined() ? v + right : right;
      }
      if (v.defined()) write(maps[node.out], r, c, v);
      return {};
    }
    case Kind::kBlock:
      run_block(node, r, r + 1, c, c + 1);
      return {};
    case Kind::kDownsample:
      write(maps[node.out], r, c,
            conv_window(node.conv1, {&maps[node.in]}, Pre::kNone, r, r + 1, c, c + 1));
      return {};
    case Kind::kUpsample: {
      // Input (r/2, c/2) alone fills the 2×2 output block at (r, c) (kernel = stride, no crop).
      if (r % 2 != 0 || c % 2 != 0) return {};
      const auto& k = node.conv1;
      TORCH_CHECK(k.kw == k.stride && k.crop_left == 0 && k.crop_right == 0,
                  "CachedPixelCnn: ul upsampling must have kernel = stride, no crop");
      auto x = maps[node.in].slice(2, r / 2, r / 2 + 1).slice(3, c / 2, c / 2 + 1);
      auto y = torch::conv2d(x, k.w1x1).view({x.size(0), -1, k.kh, k.kw}) + k.b.view({1, -1, 1, 1});
      write(maps[node.out], r, c, y);
      return {};
    }
    case Kind::kOut:
      return conv_window(node.conv1, {&maps[node.in]}, Pre::kElu, r, r + 1, c, c + 1);
    default:
      TORCH_INTERNAL_ASSERT(false, "CachedPixelCnn: not a ul-stream node");
  }
  return {};
}

// Long on purpose: it mirrors PixelCnnImpl::forward layer by layer (up pass, then down pass),
// so the two can be read side by side.
CachedPixelCnn::CachedPixelCnn(PixelCnnImpl& net, const CondFeatures& features, int64_t n,
                               int64_t height, int64_t width)
    : state_(std::make_unique<State>()) {
  torch::NoGradGuard no_grad;
  TORCH_CHECK(n >= 1 && height > 0 && width > 0 && height % 4 == 0 && width % 4 == 0,
              "CachedPixelCnn: need n >= 1 and H, W divisible by 4");
  const auto scales = net.cond_feature_scales();
  TORCH_CHECK(features.size() == scales.size(), "CachedPixelCnn: ", features.size(),
              " conditioning feature maps, expected ", scales.size());
  for (size_t k = 0; k < features.size(); ++k) {
    TORCH_CHECK(features[k].size(0) == n && features[k].size(2) == (height >> scales[k]) &&
                    features[k].size(3) == (width >> scales[k]),
                "CachedPixelCnn: conditioning feature map ", k, " does not match the images");
  }
  auto& st = *state_;
  st.n = n;
  st.height = height;
  st.width = width;
  st.channels = net.image_channels();
  const int64_t f = net.options.nr_filters(), nr = net.options.nr_resnet();

  // The canvas with the ones channel that marks where the zero padding is.
  st.maps.push_back(channels_last(torch::cat(
      {torch::zeros({n, st.channels, height, width}), torch::ones({n, 1, height, width})}, 1)));

  // `position`: the gated-resnet position (model/pixelcnn.h), which picks the conditioning map.
  auto block = [&](torch::nn::ModuleList& list, int64_t i, int64_t position, Stream stream,
                   int64_t scale, int64_t in, std::vector<int64_t> skips) {
    auto& m = *list[i]->as<GatedResnet>();
    Node node(Kind::kBlock, stream, scale);
    node.in = in;
    node.skips = std::move(skips);
    node.conv1 = freeze(*m.conv1);
    node.conv2 = freeze(*m.conv2);
    if (!m.nin_skip.is_empty()) node.nin = freeze(*m.nin_skip);
    TORCH_CHECK(node.skips.empty() == m.nin_skip.is_empty(), "CachedPixelCnn: skip mismatch");
    node.c1 = zeros(n, 2 * f, height >> scale, width >> scale);
    if (!m.cond_conv.is_empty()) {
      node.cond = channels_last(
          m.cond_conv->forward(torch::elu(net.cond_map(features, position))).to(torch::kFloat));
    }
    node.out = st.new_map(f, scale);
    st.nodes.push_back(std::move(node));
    return st.nodes.back().out;
  };
  auto resample = [&](Kind kind, const Conv& conv, Stream stream, int64_t scale, int64_t in) {
    Node node(kind, stream, scale);
    node.in = in;
    node.conv1 = conv;
    node.out = st.new_map(f, scale);
    st.nodes.push_back(std::move(node));
    return st.nodes.back().out;
  };

  // The layer list of PixelCnnImpl::forward_with_features, in its order.
  {
    Node u(Kind::kInitU, Stream::kU, 0);
    u.conv1 = freeze(*net.u_init);
    u.out = st.new_map(f, 0);
    st.nodes.push_back(std::move(u));
    Node ul(Kind::kInitUl, Stream::kUl, 0);
    ul.conv1 = freeze(*net.ul_init_down);
    ul.conv2 = freeze(*net.ul_init_right);
    ul.out = st.new_map(f, 0);
    st.nodes.push_back(std::move(ul));
  }
  std::vector<int64_t> us{st.nodes[0].out}, uls{st.nodes[1].out};
  for (int64_t s = 0; s < kScales; ++s) {
    for (int64_t r = 0; r < nr; ++r) {
      const int64_t p = s * nr + r;
      us.push_back(block(net.up_u, p, p, Stream::kU, s, us.back(), {}));
      uls.push_back(block(net.up_ul, p, p, Stream::kUl, s, uls.back(), {us.back()}));
    }
    if (s + 1 < kScales) {
      us.push_back(
          resample(Kind::kDownsample, freeze(net.u_downsample, s), Stream::kU, s + 1, us.back()));
      uls.push_back(resample(Kind::kDownsample, freeze(net.ul_downsample, s), Stream::kUl, s + 1,
                             uls.back()));
    }
  }
  auto pop = [](std::vector<int64_t>& v) {
    const int64_t m = v.back();
    v.pop_back();
    return m;
  };
  int64_t u = pop(us), ul = pop(uls), i = 0;
  for (int64_t s = kScales - 1; s >= 0; --s) {
    const int64_t blocks = s == kScales - 1 ? nr : nr + 1;
    for (int64_t r = 0; r < blocks; ++r, ++i) {
      u = block(net.down_u, i, kScales * nr + i, Stream::kU, s, u, {pop(us)});
      ul = block(net.down_ul, i, kScales * nr + i, Stream::kUl, s, ul, {u, pop(uls)});
    }
    if (s > 0) {
      u = resample(Kind::kUpsample, freeze(net.u_upsample, kScales - 1 - s), Stream::kU, s - 1, u);
      ul = resample(Kind::kUpsample, freeze(net.ul_upsample, kScales - 1 - s), Stream::kUl, s - 1,
                    ul);
    }
  }
  TORCH_INTERNAL_ASSERT(us.empty() && uls.empty());
  Node out(Kind::kOut, Stream::kUl, 0);
  out.in = ul;
  out.conv1 = freeze(*net.out);
  st.nodes.push_back(std::move(out));
}

CachedPixelCnn::~CachedPixelCnn() = default;
CachedPixelCnn::CachedPixelCnn(CachedPixelCnn&&) noexcept = default;
CachedPixelCnn& CachedPixelCnn::operator=(CachedPixelCnn&&) noexcept = default;

torch::Tensor CachedPixelCnn::params_at(int64_t i, int64_t j) {
  torch::NoGradGuard no_grad;
  auto& st = *state_;
  TORCH_CHECK(i == st.next_i && j == st.next_j, "CachedPixelCnn: asked for pixel (", i, ", ", j,
              ") but the next pixel in raster order is (", st.next_i, ", ", st.next_j, ")");
  if (st.u_row < i) {
    // Row i of the u stream sees only rows < i, all drawn by now.
    for (auto& node : st.nodes) {
      if (node.stream == Stream::kU && i % (int64_t{1} << node.scale) == 0) {
        st.run_u(node, i >> node.scale);
      }
    }
    st.u_row = i;
  }
  torch::Tensor params;
  for (auto& node : st.nodes) {
    const int64_t step = int64_t{1} << node.scale;
    if (node.stream == Stream::kUl && i % step == 0 && j % step == 0) {
      auto p = st.run_ul(node, i >> node.scale, j >> node.scale);
      if (p.defined()) params = p;
    }
  }
  return params;
}

void CachedPixelCnn::set_pixel(int64_t i, int64_t j, const torch::Tensor& value) {
  torch::NoGradGuard no_grad;
  auto& st = *state_;
  TORCH_CHECK(i == st.next_i && j == st.next_j, "CachedPixelCnn: set_pixel(", i, ", ", j,
              ") out of raster order");
  TORCH_CHECK(st.u_row == i, "CachedPixelCnn: set_pixel before params_at");
  TORCH_CHECK(value.dim() == 4 && value.size(0) == st.n && value.size(1) == st.channels &&
                  value.size(2) == 1 && value.size(3) == 1,
              "CachedPixelCnn: pixel value must be N×C×1×1");
  st.maps[0].slice(1, 0, st.channels).slice(2, i, i + 1).slice(3, j, j + 1).copy_(value);
  if (++st.next_j == st.width) {
    st.next_j = 0;
    ++st.next_i;
  }
}

}  // namespace agave::model

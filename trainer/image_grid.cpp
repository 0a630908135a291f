#include "trainer/image_grid.h"

#include "data/loader.h"
#include "model/sampler.h"

#include <stdexcept>

namespace agave::trainer {

monitoring::Image image_grid(const std::vector<torch::Tensor>& rows, int64_t pad) {
  if (rows.empty()) throw std::invalid_argument("image_grid: no rows");
  int64_t size = 0, cols = 0;
  const int64_t channels = rows.front().size(1);
  for (const auto& r : rows) {
    if (r.dim() != 4 || r.scalar_type() != torch::kUInt8 || r.size(1) != channels) {
      throw std::invalid_argument("image_grid: rows must be uint8 N×C×H×W with equal C");
    }
    size = std::max(size, r.size(2));
    cols = std::max(cols, r.size(0));
  }
  const int64_t n_rows = static_cast<int64_t>(rows.size());
  // White background: gaps read as gaps on dark samples.
  auto canvas = torch::full({n_rows * (size + pad) + pad, cols * (size + pad) + pad, channels}, 255,
                            torch::kUInt8);
  for (int64_t i = 0; i < n_rows; ++i) {
    auto r = rows[i].to(torch::kFloat);
    if (r.size(2) != size) {
      r = torch::upsample_nearest2d(r, std::vector<int64_t>{size, size});
    }
    r = r.to(torch::kUInt8).permute({0, 2, 3, 1}).contiguous();  // N×H×W×C
    for (int64_t j = 0; j < r.size(0); ++j) {
      const int64_t y0 = pad + i * (size + pad), x0 = pad + j * (size + pad);
      canvas.narrow(0, y0, size).narrow(1, x0, size).copy_(r[j]);
    }
  }
  monitoring::Image img;
  img.height = canvas.size(0);
  img.width = canvas.size(1);
  img.channels = channels;
  img.pixels.assign(canvas.data_ptr<uint8_t>(), canvas.data_ptr<uint8_t>() + canvas.numel());
  return img;
}

}  // namespace agave::trainer

namespace agave::trainer {

void write_picture_sheets(model::Agave& model, const std::string& shards, int64_t n,
                          const torch::Device& device, const std::string& output_dir) {
  model::ScopedEval eval_mode(*model);
  torch::NoGradGuard no_grad;
  data::LoaderOptions tl;
  tl.batch_size = n;
  tl.shuffle = false;
  tl.drop_last = false;
  data::ShardLoader test(shards, "test", tl);
  const auto xb = test.next()->images.to(device);
  const auto fz = torch::cat({model->vae->sample_prior(n).fz, model->vae->forward(xb).fz});
  const auto xs = model::sample_pixels(model, fz);
  const auto fz_u8 = model::VaeImpl::y_mean(fz).round().clamp(0, 255).to(torch::kUInt8).cpu();
  monitoring::write_png(output_dir + "/samples.png",
                        image_grid({fz_u8.narrow(0, 0, n), xs.narrow(0, 0, n).cpu()}));
  monitoring::write_png(output_dir + "/reconstructions.png",
                        image_grid({xb.cpu(), fz_u8.narrow(0, n, n), xs.narrow(0, n, n).cpu()}));
}

}  // namespace agave::trainer

#include "trainer/image_grid.h"

#include "data/loader.h"
#include "model/sampler.h"

#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <utility>

namespace agave::trainer {

monitoring::Image image_grid(const std::vector<torch::Tensor>& rows, int64_t pad,
                             int64_t min_size) {
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
  size *= std::max<int64_t>(1, (min_size + size - 1) / size);
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

namespace {

torch::Tensor to_pixels(const torch::Tensor& fz) {
  return model::VaeImpl::y_mean(fz).round().clamp(0, 255).to(torch::kUInt8).cpu();
}

}  // namespace

std::vector<std::string> write_picture_sheets(model::Agave& model, const std::string& shards,
                                              const PictureOptions& options,
                                              const torch::Device& device,
                                              const std::string& output_dir, int64_t step) {
  model::ScopedEval eval_mode(*model);
  torch::NoGradGuard no_grad;
  const int64_t n = options.images;
  const int64_t k = model->has_pixelcnn() ? options.samples_per_latent : 0;
  data::LoaderOptions tl;
  tl.batch_size = n;
  tl.shuffle = false;
  tl.drop_last = false;
  data::ShardLoader test(shards, "test", tl);
  const auto xb = test.next()->images.to(device);
  const bool latent = model->has_latents();
  // f(z) at x's size (nearest), so it sits in a row with x-sized samples.
  const auto prior =
      latent ? model->conditioning(model->vae->sample_prior(n).fz) : model->no_latent(xb);
  const auto posterior =
      latent ? model->conditioning(model->vae->forward(xb).fz) : model->no_latent(xb);
  torch::Tensor drawn;  // k samples for each prior f(z), then one for each posterior f(z)
  if (k > 0) {
    drawn =
        model::sample_pixels(model, torch::cat({prior.repeat_interleave(k, 0), posterior})).cpu();
  }
  const auto prior_px = to_pixels(prior), posterior_px = to_pixels(posterior);
  std::vector<torch::Tensor> sample_rows, recon_rows = {xb.cpu()};
  for (int64_t i = 0; i < n; ++i) {
    std::vector<torch::Tensor> row;
    if (latent) row.push_back(prior_px.narrow(0, i, 1));
    if (k > 0) row.push_back(drawn.narrow(0, i * k, k));
    sample_rows.push_back(torch::cat(row));
  }
  if (latent) recon_rows.push_back(posterior_px);
  if (k > 0) recon_rows.push_back(drawn.narrow(0, n * k, n));
  char name[64];
  std::snprintf(name, sizeof(name), "-step-%08lld.png", static_cast<long long>(step));
  std::vector<std::string> written;
  for (const auto& [sheet, rows] :
       {std::pair{"samples", &sample_rows}, {"reconstructions", &recon_rows}}) {
    const std::string stepped = output_dir + "/" + sheet + name;
    monitoring::write_png(stepped, image_grid(*rows));
    std::filesystem::copy_file(stepped, output_dir + "/" + sheet + ".png",
                               std::filesystem::copy_options::overwrite_existing);
    written.push_back(stepped);
  }
  return written;
}

}  // namespace agave::trainer

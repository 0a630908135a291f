#include "trainer/run_labels.h"

#include <iterator>
#include <sstream>

#include "monitoring/paper_axes.h"

namespace agave::trainer {

std::vector<std::pair<std::string, std::string>> paper_axis_values(const LossOptions& loss,
                                                                   const model::AuxOptions& aux) {
  std::ostringstream lambda;
  lambda << loss.lambda;
  const std::string values[] = {lambda.str(), std::to_string(aux.resolution()),
                                std::to_string(aux.color_bins())};
  static_assert(std::size(monitoring::kPaperAxes) == std::size(values));
  std::vector<std::pair<std::string, std::string>> out;
  for (size_t i = 0; i < std::size(values); ++i) {
    out.emplace_back(monitoring::kPaperAxes[i].label, values[i]);
  }
  return out;
}

monitoring::RunLabels run_labels(const std::string& run, const LossOptions& loss,
                                 const model::AuxOptions& aux, int rank) {
  monitoring::RunLabels labels;
  labels.run = run;
  labels.rank = rank;
  const auto values = paper_axis_values(loss, aux);
  size_t i = 0;
  monitoring::visit_paper_axes(labels, [&](const monitoring::PaperAxis&, std::string& value) {
    value = values[i++].second;
  });
  return labels;
}

}  // namespace agave::trainer

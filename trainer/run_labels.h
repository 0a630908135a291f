#pragma once
// The values a run has on the paper's sweep axes (monitoring/paper_axes.h), from its options:
// what its Prometheus labels carry and what a sweep's table shows as constants.
#include <string>
#include <utility>
#include <vector>

#include "model/options.h"
#include "monitoring/metrics_exporter.h"
#include "trainer/options.h"

namespace agave::trainer {

// (label, value) per axis, in kPaperAxes' order: λ as a stream prints it (2, 0.5), the aux
// image's resolution and color bins as integers.
std::vector<std::pair<std::string, std::string>> paper_axis_values(const LossOptions& loss,
                                                                   const model::AuxOptions& aux);

// A run's Prometheus labels: its name, its values on the paper's axes and the world rank.
monitoring::RunLabels run_labels(const std::string& run, const LossOptions& loss,
                                 const model::AuxOptions& aux, int rank);

}  // namespace agave::trainer

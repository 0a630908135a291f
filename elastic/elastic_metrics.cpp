#include "elastic/elastic_metrics.h"

#include <map>

#include "monitoring/exposer_hub.h"

namespace agave::elastic {

struct ElasticMetrics::Impl {
  std::shared_ptr<monitoring::ExposerHub> hub;
  prometheus::Gauge* generation;
  prometheus::Gauge* ranks;
  prometheus::Gauge* excluded;
  std::map<FailureCause, prometheus::Counter*> restarts;

  explicit Impl(std::shared_ptr<monitoring::ExposerHub> h) : hub(std::move(h)) {
    auto& r = *hub->registry;
    generation = &monitoring::gauge(r, "agave_elastic_generation",
                                    "Generation (mpirun launch) the elastic job is in, from 1", {});
    ranks = &monitoring::gauge(r, "agave_elastic_ranks", "Ranks of the current generation", {});
    excluded = &monitoring::gauge(r, "agave_elastic_excluded_hosts",
                                  "Hosts left out because a failure report named them", {});
    for (FailureCause c : kFailureCauses) {
      restarts[c] = &monitoring::counter(r, "agave_elastic_restarts_total",
                                         "Generations restarted after a failure, by cause",
                                         {{"cause", cause_name(c)}});
    }
  }
};

ElasticMetrics::ElasticMetrics(const monitoring::MonitoringOptions& options)
    : impl_(std::make_unique<Impl>(monitoring::exposer_hub(options))) {}

ElasticMetrics::~ElasticMetrics() = default;

void ElasticMetrics::generation_started(const Plan& plan, size_t excluded_hosts) {
  impl_->generation->Set(plan.generation);
  impl_->ranks->Set(plan.ranks);
  impl_->excluded->Set(static_cast<double>(excluded_hosts));
}

void ElasticMetrics::restarted(FailureCause cause) { impl_->restarts.at(cause)->Increment(); }

std::string ElasticMetrics::url() const { return impl_->hub->url(); }

}  // namespace agave::elastic

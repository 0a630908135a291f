# agave_elastic: restarts an agave_trainer job on the live hosts after a node loss (elastic/).
agave_executable(agave_elastic elastic_main.cpp)

# agave_eval: test-set bits/dim (ELBO and IW bound) of a checkpoint, split across MPI ranks.
agave_executable(agave_eval eval_main.cpp)

# agave_sweep_plot: sweep.csv and a plot of test bits/dim and KL against lambda for a sweep.
agave_executable(agave_sweep_plot sweep_plot_main.cpp)

import FlowCore

// OpenBLAS must pick its fast kernels before anything else runs (it may re-execute this process).
OpenBLASSetup.ensureOptimizedKernels()
FlowMPIRun.main()

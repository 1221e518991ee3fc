/* Allreduce (MPI_SUM of floats) timing across the ranks of a job: for each message size, the median over
 * repetitions of the slowest rank's time, after warm-up. Used by bench.sh to fit t(n) = α + β·n over the
 * one-box cluster's TCP links (or any mpirun layout).
 *   mpicc -O2 -o allreduce-bench allreduce-bench.c && mpirun -np 3 … ./allreduce-bench [MAX_BYTES [BYTES…]]
 * Sizes: 4 B, 16 B, … (×4) up to MAX_BYTES (default 16 MiB), then each extra BYTES (e.g. a model's gradient).
 * Prints: bytes, median seconds, effective GB/s (bytes / time). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int compare(const void *a, const void *b);

static void measure(long bytes, float *in, float *out, int rank) {
  int count = (int)(bytes / 4);
  int reps = bytes <= 65536 ? 200 : bytes <= (1 << 20) ? 40 : 12;
  double *t = malloc(sizeof(double) * reps);
  for (int w = 0; w < 3; w++) MPI_Allreduce(in, out, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  for (int r = 0; r < reps; r++) {
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    MPI_Allreduce(in, out, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    double local = MPI_Wtime() - t0, slowest;
    MPI_Allreduce(&local, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    t[r] = slowest;
  }
  qsort(t, reps, sizeof(double), compare);
  if (rank == 0) printf("%ld %.6e %.3f\n", bytes, t[reps / 2], bytes / t[reps / 2] / 1e9);
  fflush(stdout);
  free(t);
}

static int compare(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  long max_bytes = argc > 1 ? atol(argv[1]) : 16L << 20, largest = max_bytes;
  for (int i = 2; i < argc; i++) if (atol(argv[i]) > largest) largest = atol(argv[i]);
  float *in = malloc(largest), *out = malloc(largest);
  for (long i = 0; i < largest / 4; i++) in[i] = (float)(i % 97);
  if (rank == 0) printf("# %d ranks: bytes median_s GB/s\n", size);
  for (long bytes = 4; bytes <= max_bytes; bytes *= 4) measure(bytes, in, out, rank);
  for (int i = 2; i < argc; i++) measure(atol(argv[i]) / 4 * 4, in, out, rank);
  free(in);
  free(out);
  MPI_Finalize();
  return 0;
}

// Single-threaded sgemm of the seed step's main shape, oneDNN (dnnl_sgemm) against the system OpenBLAS (BENCHMARKS.md §11).
//   apt-get install libdnnl-dev libopenblas-dev
//   gcc -O2 sgemm_onednn_openblas.c -o /tmp/sgemm $(pkg-config --cflags openblas) -ldnnl -lopenblas
//   OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 /tmp/sgemm
#include <oneapi/dnnl/dnnl.h>
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(void){
  int ms[2]={128,256};
  for(int i=0;i<2;i++){int M=ms[i],N=256,K=256;
    float *a=malloc(4*M*K),*b=malloc(4*K*N),*c=malloc(4*M*N);
    for(int j=0;j<M*K;j++)a[j]=(j%7)*0.01f; for(int j=0;j<K*N;j++)b[j]=(j%5)*0.01f;
    double fl=2.0*M*N*K;
    // Y = X * W^T (row-major), as Dense.forward
    dnnl_sgemm('N','T',M,N,K,1.0f,a,K,b,K,0.0f,c,N);
    int n=0;double t=now();while(now()-t<1.0){dnnl_sgemm('N','T',M,N,K,1.0f,a,K,b,K,0.0f,c,N);n++;}
    double r1=fl*n/(now()-t)/1e9;
    cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasTrans,M,N,K,1,a,K,b,K,0,c,N);
    n=0;t=now();while(now()-t<1.0){cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasTrans,M,N,K,1,a,K,b,K,0,c,N);n++;}
    double r2=fl*n/(now()-t)/1e9;
    printf("M=%d N=256 K=256 (NT): oneDNN %.1f GFLOP/s, system OpenBLAS %.1f GFLOP/s\n",M,r1,r2);
  }
  return 0;
}

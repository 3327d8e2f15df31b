/* Captured work: CUDA graphs recorded from the backend's stream. The
 * engine records a whole network pass once its shapes have run eagerly
 * (so every cuDNN algorithm is chosen and the workspace sized) and then
 * replays it with one launch instead of one per layer. */
#include <stdlib.h>

#include "cuda_impl.h"

int cuda_capture_begin(eg_backend *be)
{
    CU_CHECK(cudaStreamBeginCapture(cuda_stream(be), cudaStreamCaptureModeThreadLocal));
    return 0;
}

int cuda_capture_end(eg_backend *be, void **unit)
{
    *unit = NULL;
    cudaGraph_t graph = NULL;
    cudaError_t e = cudaStreamEndCapture(cuda_stream(be), &graph);
    if (e != cudaSuccess || !graph) {
        if (graph) cudaGraphDestroy(graph);
        return cuda_status(e != cudaSuccess ? e : cudaErrorStreamCaptureInvalidated,
                           "cudaStreamEndCapture", __FILE__, __LINE__);
    }
    cudaGraphExec_t exec = NULL;
    e = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    if (e != cudaSuccess) return cuda_status(e, "cudaGraphInstantiate", __FILE__, __LINE__);
    *unit = exec;
    return 0;
}

int cuda_replay(eg_backend *be, void *unit)
{
    CU_CHECK(cudaGraphLaunch((cudaGraphExec_t)unit, cuda_stream(be)));
    return 0;
}

void cuda_unit_free(eg_backend *be, void *unit)
{
    if (unit) cudaGraphExecDestroy((cudaGraphExec_t)unit);
    cudaGetLastError();
}

// OpenBLAS's C interface (Debian: libopenblas-dev, pkg-config "openblas").
#include <cblas.h>

// Host-side check: the hand-derived rasterize backward equals forward-mode derivatives.
#include <cstdio>
#include <cstdlib>
#include "rasterize/raster_math.h"
using namespace nvdrec;
int main() {
  srand(1);
  float worst = 0;
  for (int trial = 0; trial < 2000; ++trial) {
    float v[3][4];
    for (int i = 0; i < 3; ++i)
      for (int k = 0; k < 4; ++k) v[i][k] = (rand() / (float)RAND_MAX) * 2 - 1;
    for (int i = 0; i < 3; ++i) v[i][3] = 0.5f + rand() / (float)RAND_MAX;
    float px = (rand() / (float)RAND_MAX) * 0.5f - 0.25f, py = (rand() / (float)RAND_MAX) * 0.5f - 0.25f;
    float go[7];
    for (int o = 0; o < 7; ++o) go[o] = rand() / (float)RAND_MAX - 0.5f;
    Dual<12> dv[3][4];
    for (int i = 0; i < 3; ++i)
      for (int k = 0; k < 4; ++k) dv[i][k] = Dual<12>::var(v[i][k], i * 4 + k);
    Dual<12> out[7];
    bool inside;
    raster_eval<Dual<12>>(dv, px, py, 0.01f, 0.02f, out, inside);
    if (out[2].v != out[2].v || (out[0].v * 0 + 1) == 0) continue;
    {
      float b0 = out[0].v, b1 = out[1].v;
      float wp = b0 * v[0][3] + b1 * v[1][3] + (1 - b0 - b1) * v[2][3];
      if (!(wp > 0)) continue;
    }
    float gv[3][4] = {};
    raster_eval_grad(v, px, py, 0.01f, 0.02f, go, gv);
    float scale = 0, err = 0;
    for (int j = 0; j < 12; ++j) {
      float ref = 0;
      for (int o = 0; o < 7; ++o) ref += go[o] * out[o].d[j];
      scale = fmaxf(scale, fabsf(ref));
      err = fmaxf(err, fabsf(ref - gv[j / 4][j % 4]));
    }
    if (scale > 0 && err / scale > worst) worst = err / scale;
  }
  printf("max relative error manual vs dual: %g\n", worst);
  return worst < 1e-3 ? 0 : 1;
}

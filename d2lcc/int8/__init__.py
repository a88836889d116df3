"""Integer (int8) kernels that use the CPU's dot-product instructions.

One module per instruction family: :mod:`d2lcc.int8.x86` (AVX2
``vpmaddubsw`` + ``vpmaddwd``, AVX-512/AVX VNNI ``vpdpbusd``) and
:mod:`d2lcc.int8.arm` (Arm ``sdot``/``udot``). Each defines its tensor
intrinsics, registers them with TVM on first use (never at import time) and
schedules int8 matmuls with them.
"""

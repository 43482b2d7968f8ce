"""srgpu: a GPU-accelerated random-forest ensemble engine for global soil respiration.

Rebuilds the method of Lu et al. 2021 (Environ. Res. Lett. 16 054048): random forests trained on
the Soil Respiration Database predict annual soil respiration (SR) and heterotrophic respiration
(HR) on a global grid; many replicate models, each trained on an area-weighted stratified 80 %
draw of the records, give the uncertainty; autotrophic respiration is AR = SR - HR.
"""

__version__ = "0.1.0"

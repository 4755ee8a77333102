"""The figures of the Home, Overview and Explore pages, computed without Streamlit.

- :mod:`registry.figures.home`: what the registry holds, each outcome's last 12 months and how
  fresh the data are (Home);
- :mod:`registry.figures.overview`: opportunities in a period and each outcome's 12 months against
  a year earlier and 2019 (Overview);
- :mod:`registry.figures.explore`: the filters on offer, the grouped delivery, outcome and
  population frames, and the trend, borough table and tile map computed from them (Explore; the
  options also give Overview its months);
- :mod:`registry.figures.funnel`: the funnel plot's rates, Poisson control limits and
  overdispersion (Explore).

Which windows may give a change or a rate, and where a page's period ends by default, is the
registry-wide rule of :mod:`registry.windows` (the analysis and the reports use it too).
"""

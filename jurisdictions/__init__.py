"""The domain of areas: Punjab's jurisdictions and the call router.

Province > Region (RPO) > District (DPO/CPO) > Tehsil > Police station (SHO).
Pure Python over geopandas, shapely and h3; no web or database imports.
"""

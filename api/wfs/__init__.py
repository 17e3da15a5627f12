"""WFS 2.0 (KVP) over the layer registry: capabilities, schemas, GML 3.2 and GeoJSON features."""

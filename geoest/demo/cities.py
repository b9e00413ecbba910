"""The cities the demo photos cluster around: real coordinates on every inhabited continent.

Real photo collections such as MP-16 are dense around famous cities and sparse elsewhere
(§3.1 adapts the cell sizes to exactly that). The demo reproduces the shape with these
cities, grouped continent > region > city so that the photos can carry a location cue at
each scale (a palette per continent, a texture per region, a motif per city).

Each row: (city, continent, region, lat_deg, lon_deg, popularity). Popularity weights how
many photos a city gets (3: a world tourist magnet, 1: a regional capital).
"""
import numpy as np

CITIES = (
    # Europe
    ("London", "Europe", "Western Europe", 51.507, -0.128, 3),
    ("Paris", "Europe", "Western Europe", 48.857, 2.352, 3),
    ("Amsterdam", "Europe", "Western Europe", 52.370, 4.895, 2),
    ("Brussels", "Europe", "Western Europe", 50.847, 4.357, 1),
    ("Dublin", "Europe", "Western Europe", 53.350, -6.260, 1),
    ("Rome", "Europe", "Southern Europe", 41.903, 12.496, 3),
    ("Barcelona", "Europe", "Southern Europe", 41.385, 2.173, 2),
    ("Madrid", "Europe", "Southern Europe", 40.417, -3.704, 2),
    ("Lisbon", "Europe", "Southern Europe", 38.722, -9.139, 1),
    ("Athens", "Europe", "Southern Europe", 37.984, 23.728, 1),
    ("Berlin", "Europe", "Central and Northern Europe", 52.520, 13.405, 2),
    ("Vienna", "Europe", "Central and Northern Europe", 48.208, 16.373, 1),
    ("Prague", "Europe", "Central and Northern Europe", 50.076, 14.438, 2),
    ("Stockholm", "Europe", "Central and Northern Europe", 59.329, 18.069, 1),
    ("Copenhagen", "Europe", "Central and Northern Europe", 55.676, 12.568, 1),
    ("Moscow", "Europe", "Eastern Europe", 55.756, 37.617, 2),
    ("Warsaw", "Europe", "Eastern Europe", 52.230, 21.012, 1),
    ("Budapest", "Europe", "Eastern Europe", 47.498, 19.040, 1),
    ("Istanbul", "Europe", "Eastern Europe", 41.008, 28.978, 2),
    ("Kyiv", "Europe", "Eastern Europe", 50.450, 30.523, 1),
    # Asia
    ("Tokyo", "Asia", "East Asia", 35.676, 139.650, 3),
    ("Seoul", "Asia", "East Asia", 37.566, 126.978, 2),
    ("Beijing", "Asia", "East Asia", 39.904, 116.407, 2),
    ("Shanghai", "Asia", "East Asia", 31.230, 121.474, 2),
    ("Hong Kong", "Asia", "East Asia", 22.319, 114.169, 2),
    ("Osaka", "Asia", "East Asia", 34.694, 135.502, 1),
    ("Bangkok", "Asia", "Southeast Asia", 13.756, 100.502, 2),
    ("Singapore", "Asia", "Southeast Asia", 1.352, 103.820, 2),
    ("Hanoi", "Asia", "Southeast Asia", 21.028, 105.854, 1),
    ("Manila", "Asia", "Southeast Asia", 14.600, 120.984, 1),
    ("Jakarta", "Asia", "Southeast Asia", -6.208, 106.846, 1),
    ("Kuala Lumpur", "Asia", "Southeast Asia", 3.139, 101.687, 1),
    ("Delhi", "Asia", "South Asia", 28.614, 77.209, 2),
    ("Mumbai", "Asia", "South Asia", 19.076, 72.878, 2),
    ("Kathmandu", "Asia", "South Asia", 27.717, 85.324, 1),
    ("Colombo", "Asia", "South Asia", 6.927, 79.861, 1),
    ("Bangalore", "Asia", "South Asia", 12.972, 77.595, 1),
    ("Dubai", "Asia", "Western Asia", 25.205, 55.271, 2),
    ("Tehran", "Asia", "Western Asia", 35.689, 51.389, 1),
    ("Jerusalem", "Asia", "Western Asia", 31.769, 35.216, 1),
    ("Riyadh", "Asia", "Western Asia", 24.713, 46.675, 1),
    # Africa
    ("Cairo", "Africa", "North Africa", 30.044, 31.236, 2),
    ("Marrakesh", "Africa", "North Africa", 31.630, -7.981, 1),
    ("Tunis", "Africa", "North Africa", 36.806, 10.182, 1),
    ("Casablanca", "Africa", "North Africa", 33.573, -7.590, 1),
    ("Lagos", "Africa", "West Africa", 6.524, 3.379, 1),
    ("Accra", "Africa", "West Africa", 5.604, -0.187, 1),
    ("Dakar", "Africa", "West Africa", 14.716, -17.467, 1),
    ("Nairobi", "Africa", "East Africa", -1.292, 36.822, 1),
    ("Addis Ababa", "Africa", "East Africa", 9.030, 38.740, 1),
    ("Dar es Salaam", "Africa", "East Africa", -6.792, 39.208, 1),
    ("Kampala", "Africa", "East Africa", 0.347, 32.582, 1),
    ("Cape Town", "Africa", "Southern Africa", -33.925, 18.424, 2),
    ("Johannesburg", "Africa", "Southern Africa", -26.204, 28.047, 1),
    ("Windhoek", "Africa", "Southern Africa", -22.560, 17.066, 1),
    # North America
    ("New York", "North America", "Eastern North America", 40.713, -74.006, 3),
    ("Boston", "North America", "Eastern North America", 42.360, -71.059, 1),
    ("Washington", "North America", "Eastern North America", 38.907, -77.037, 2),
    ("Toronto", "North America", "Eastern North America", 43.653, -79.383, 1),
    ("Montreal", "North America", "Eastern North America", 45.502, -73.567, 1),
    ("Chicago", "North America", "Eastern North America", 41.878, -87.630, 2),
    ("San Francisco", "North America", "Western North America", 37.775, -122.419, 3),
    ("Los Angeles", "North America", "Western North America", 34.052, -118.244, 2),
    ("Seattle", "North America", "Western North America", 47.606, -122.332, 1),
    ("Vancouver", "North America", "Western North America", 49.283, -123.121, 1),
    ("Las Vegas", "North America", "Western North America", 36.170, -115.140, 1),
    ("Miami", "North America", "Southern North America", 25.762, -80.192, 1),
    ("New Orleans", "North America", "Southern North America", 29.951, -90.072, 1),
    ("Houston", "North America", "Southern North America", 29.760, -95.370, 1),
    ("Mexico City", "North America", "Southern North America", 19.433, -99.133, 2),
    ("Havana", "North America", "Southern North America", 23.113, -82.366, 1),
    ("Denver", "North America", "Interior North America", 39.739, -104.990, 1),
    ("Calgary", "North America", "Interior North America", 51.045, -114.072, 1),
    ("Anchorage", "North America", "Interior North America", 61.218, -149.900, 1),
    # South America
    ("Bogota", "South America", "Andes and Caribbean coast", 4.711, -74.072, 1),
    ("Caracas", "South America", "Andes and Caribbean coast", 10.481, -66.904, 1),
    ("Quito", "South America", "Andes and Caribbean coast", -0.181, -78.468, 1),
    ("Lima", "South America", "Andes and Caribbean coast", -12.046, -77.043, 1),
    ("Rio de Janeiro", "South America", "Brazil", -22.907, -43.173, 2),
    ("Sao Paulo", "South America", "Brazil", -23.551, -46.633, 1),
    ("Salvador", "South America", "Brazil", -12.971, -38.511, 1),
    ("Buenos Aires", "South America", "Southern Cone", -34.604, -58.382, 2),
    ("Santiago", "South America", "Southern Cone", -33.449, -70.669, 1),
    ("Montevideo", "South America", "Southern Cone", -34.901, -56.164, 1),
    # Oceania
    ("Sydney", "Oceania", "Australia", -33.869, 151.209, 2),
    ("Melbourne", "Oceania", "Australia", -37.814, 144.963, 1),
    ("Brisbane", "Oceania", "Australia", -27.470, 153.026, 1),
    ("Perth", "Oceania", "Australia", -31.950, 115.860, 1),
    ("Auckland", "Oceania", "New Zealand and Pacific", -36.848, 174.763, 1),
    ("Wellington", "Oceania", "New Zealand and Pacific", -41.287, 174.776, 1),
    ("Christchurch", "Oceania", "New Zealand and Pacific", -43.532, 172.637, 1),
    ("Honolulu", "Oceania", "New Zealand and Pacific", 21.307, -157.858, 1),
)

NAMES = tuple(row[0] for row in CITIES)
CONTINENTS = tuple(dict.fromkeys(row[1] for row in CITIES))
REGIONS = tuple(dict.fromkeys(row[2] for row in CITIES))
LAT_DEG = np.array([row[3] for row in CITIES], dtype=np.float64)
LON_DEG = np.array([row[4] for row in CITIES], dtype=np.float64)
POPULARITY = np.array([row[5] for row in CITIES], dtype=np.float64)

# The cue hierarchy, as integer indices per city.
CONTINENT = np.array([CONTINENTS.index(row[1]) for row in CITIES], dtype=np.int64)
REGION = np.array([REGIONS.index(row[2]) for row in CITIES], dtype=np.int64)
REGION_CONTINENT = np.array([CONTINENTS.index(next(r[1] for r in CITIES if r[2] == region))
                             for region in REGIONS], dtype=np.int64)
# Index of a region among its continent's regions (selects the texture) and of a city among
# its region's cities (selects the motif).
REGION_IN_CONTINENT = np.array([list(np.flatnonzero(REGION_CONTINENT == REGION_CONTINENT[r])).index(r)
                                for r in range(len(REGIONS))], dtype=np.int64)
CITY_IN_REGION = np.array([list(np.flatnonzero(REGION == REGION[c])).index(c)
                           for c in range(len(CITIES))], dtype=np.int64)

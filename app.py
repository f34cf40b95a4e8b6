"""Streamlit front end: a thin shell over ``planning``; run with ``streamlit run app.py``."""

from __future__ import annotations

import streamlit as st
from streamlit_folium import st_folium

from planning.demo import load_demo_region
from planning.i18n import t
from planning.maps import region_map
from planning.network import load_network

st.set_page_config(page_title="医保定点药店规划 / Pharmacy planning", layout="wide")
lang = "en" if st.sidebar.radio("语言 / Language", ["中文", "English"], horizontal=True) == "English" else "zh"


@st.cache_resource(show_spinner=False)
def demo_region_and_network():
    region = load_demo_region()
    return region, load_network(region.network_path)


region, network = demo_region_and_network()
st.title(t("app_title", lang))
st.caption(f"{region.name} — {t('fictional_note', lang)}")
st.sidebar.metric(t("counties", lang), len(region.counties))
st.sidebar.metric(t("subdistricts", lang), len(region.subdistricts))
st.sidebar.metric(t("pharmacies", lang), len(region.pharmacies))
st.sidebar.metric(t("population", lang), f"{int(region.subdistricts['population'].sum()):,}")
st.sidebar.caption(t("network_summary", lang, nodes=network.n_nodes, edges=network.n_edges,
                     km=network.edge_length.sum() / 1000, pieces=network.n_components))
st_folium(region_map(region, network=network, lang=lang), height=720, use_container_width=True,
          returned_objects=[])
